"""The ticket and its hash, byte-compatible with go-livepeer's pm.Ticket and the TicketBroker's
getTicketHash."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from eth_utils import keccak

from .codec import (
    ZERO_HASH,
    address_bytes,
    to_address,
    to_bytes32,
    to_hex,
    to_uint256,
    uint256_bytes,
)


@dataclass(frozen=True)
class Ticket:
    recipient: str
    sender: str
    face_value: int
    win_prob: int
    sender_nonce: int
    recipient_rand_hash: bytes
    creation_round: int = 0
    creation_round_block_hash: bytes = ZERO_HASH

    def __post_init__(self) -> None:
        # Normalise once here so equality, hashing and signing never depend on input spelling.
        set_ = object.__setattr__
        set_(self, "recipient", to_address(self.recipient))
        set_(self, "sender", to_address(self.sender))
        for name in ("face_value", "win_prob", "sender_nonce", "creation_round"):
            set_(self, name, to_uint256(getattr(self, name)))
        set_(self, "recipient_rand_hash", to_bytes32(self.recipient_rand_hash))
        set_(self, "creation_round_block_hash", to_bytes32(self.creation_round_block_hash))

    @property
    def hash(self) -> bytes:
        return ticket_hash(self)

    def to_dict(self) -> dict:
        return ticket_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Ticket":
        return ticket_from_dict(data)


def aux_data(ticket: Ticket) -> bytes:
    """creationRound (uint256) || creationRoundBlockHash, or empty when both are zero: go-livepeer
    leaves auxData out for tickets that carry no expiration params."""
    if ticket.creation_round == 0 and ticket.creation_round_block_hash == ZERO_HASH:
        return b""
    return uint256_bytes(ticket.creation_round) + ticket.creation_round_block_hash


def ticket_hash(ticket: Ticket) -> bytes:
    """keccak256(abi.encodePacked(recipient, sender, faceValue, winProb, senderNonce,
    recipientRandHash, auxData))."""
    packed = b"".join(
        (
            address_bytes(ticket.recipient),
            address_bytes(ticket.sender),
            uint256_bytes(ticket.face_value),
            uint256_bytes(ticket.win_prob),
            uint256_bytes(ticket.sender_nonce),
            ticket.recipient_rand_hash,
            aux_data(ticket),
        )
    )
    return keccak(packed)


def ticket_to_dict(ticket: Ticket) -> dict:
    """JSON-ready: addresses and bytes as 0x-hex, uint256 amounts as decimal strings."""
    data = asdict(ticket)
    for name in ("face_value", "win_prob"):
        data[name] = str(data[name])
    for name in ("recipient_rand_hash", "creation_round_block_hash"):
        data[name] = to_hex(data[name])
    return data


def ticket_from_dict(data: dict) -> Ticket:
    return Ticket(
        recipient=data["recipient"],
        sender=data["sender"],
        face_value=data["face_value"],
        win_prob=data["win_prob"],
        sender_nonce=data["sender_nonce"],
        recipient_rand_hash=data["recipient_rand_hash"],
        creation_round=data.get("creation_round", 0),
        creation_round_block_hash=data.get("creation_round_block_hash", ZERO_HASH),
    )
