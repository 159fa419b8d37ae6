"""Whether a ticket wins: the sender's signature and the recipient's secret rand both feed the
draw, so neither side alone can steer it."""

from __future__ import annotations

from eth_utils import keccak

from .codec import uint256_bytes


def win_draw(sig: bytes, recipient_rand: int) -> int:
    """uint256(keccak256(abi.encodePacked(sig, uint256(recipientRand))))."""
    return int.from_bytes(keccak(bytes(sig) + uint256_bytes(recipient_rand)), "big")


def is_winning(sig: bytes, recipient_rand: int, win_prob: int) -> bool:
    return win_draw(sig, recipient_rand) < win_prob
