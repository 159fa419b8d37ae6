"""Operator side: ticket params, and the recipient rand behind their recipientRandHash.

The rand is an HMAC of the operator's secret over the params it commits to, so the operator keeps
no per-params state: when a ticket comes back it recomputes the rand from the ticket and the seed.
Because face value, win probability, sender and creation round are all under the HMAC, a sender
that alters any of them produces a ticket whose rand hash no longer matches.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass, field

from eth_utils import keccak

from .codec import (
    ZERO_HASH,
    address_bytes,
    hex_to_bytes,
    to_address,
    to_bytes32,
    to_hex,
    to_uint256,
    uint256_bytes,
)
from .pricing import ticket_economics, ticket_ev
from .ticket import Ticket

# Versioned so a future change of the message layout cannot collide with this one.
_RAND_DOMAIN = b"livepeer-pm/recipient-rand/v1"
MIN_SECRET_BYTES = 16
DEFAULT_PARAMS_VALIDITY_BLOCKS = 1_000
# go-livepeer's default -ticketEV: 1000 gwei.
DEFAULT_TICKET_EV = 10**12


def parse_secret(text: str) -> bytes:
    """An operator's secret as written in its settings: hex (0x optional) as its bytes, any
    other text as its UTF-8 bytes; at least MIN_SECRET_BYTES either way."""
    try:
        raw = hex_to_bytes(text)
    except ValueError:
        raw = text.encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"the operator's secret must be at least {MIN_SECRET_BYTES} bytes")
    return raw


def recipient_rand(
    secret: bytes,
    *,
    seed: int,
    sender: str,
    face_value: int,
    win_prob: int,
    expiration_block: int,
    creation_round: int = 0,
    creation_round_block_hash: bytes = ZERO_HASH,
) -> int:
    """HMAC-SHA256(secret, fixed-width fields) as a uint256. go-livepeer concatenates minimal
    big-endian bytes, which is ambiguous; fixed widths make every field boundary unique."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"recipient secret must be at least {MIN_SECRET_BYTES} bytes")
    message = b"".join(
        (
            _RAND_DOMAIN,
            uint256_bytes(seed),
            address_bytes(sender),
            uint256_bytes(face_value),
            uint256_bytes(win_prob),
            uint256_bytes(expiration_block),
            uint256_bytes(creation_round),
            to_bytes32(creation_round_block_hash),
        )
    )
    return int.from_bytes(hmac.new(bytes(secret), message, hashlib.sha256).digest(), "big")


def recipient_rand_hash(rand: int) -> bytes:
    """keccak256(abi.encodePacked(uint256(rand))), the commitment carried in every ticket."""
    return keccak(uint256_bytes(rand))


@dataclass(frozen=True)
class TicketParams:
    """What an operator hands a sender so the sender can write it tickets (go-livepeer's
    net.TicketParams plus its expiration params)."""

    recipient: str
    face_value: int
    win_prob: int
    recipient_rand_hash: bytes
    seed: int
    expiration_block: int
    creation_round: int = 0
    creation_round_block_hash: bytes = ZERO_HASH

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "recipient", to_address(self.recipient))
        for name in ("face_value", "win_prob", "seed", "expiration_block", "creation_round"):
            set_(self, name, to_uint256(getattr(self, name)))
        set_(self, "recipient_rand_hash", to_bytes32(self.recipient_rand_hash))
        set_(self, "creation_round_block_hash", to_bytes32(self.creation_round_block_hash))

    @property
    def ev(self):
        return ticket_ev(self.face_value, self.win_prob)

    def ticket(self, sender: str, sender_nonce: int) -> Ticket:
        return Ticket(
            recipient=self.recipient,
            sender=sender,
            face_value=self.face_value,
            win_prob=self.win_prob,
            sender_nonce=sender_nonce,
            recipient_rand_hash=self.recipient_rand_hash,
            creation_round=self.creation_round,
            creation_round_block_hash=self.creation_round_block_hash,
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        for name in ("face_value", "win_prob", "seed"):
            data[name] = str(data[name])
        for name in ("recipient_rand_hash", "creation_round_block_hash"):
            data[name] = to_hex(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TicketParams":
        return cls(
            recipient=data["recipient"],
            face_value=data["face_value"],
            win_prob=data["win_prob"],
            recipient_rand_hash=data["recipient_rand_hash"],
            seed=data["seed"],
            expiration_block=data["expiration_block"],
            creation_round=data.get("creation_round", 0),
            creation_round_block_hash=data.get("creation_round_block_hash", ZERO_HASH),
        )


def new_ticket_params(
    secret: bytes,
    *,
    recipient: str,
    sender: str,
    face_value: int,
    win_prob: int,
    expiration_block: int,
    creation_round: int,
    creation_round_block_hash: bytes,
    seed: int | None = None,
) -> TicketParams:
    """Fresh params for one sender; a random seed gives a fresh rand, so the nonces of earlier
    params (and any rand revealed by redeeming them) do not carry over."""
    seed = secrets.randbits(256) if seed is None else seed
    rand = recipient_rand(
        secret,
        seed=seed,
        sender=sender,
        face_value=face_value,
        win_prob=win_prob,
        expiration_block=expiration_block,
        creation_round=creation_round,
        creation_round_block_hash=creation_round_block_hash,
    )
    return TicketParams(
        recipient=recipient,
        face_value=face_value,
        win_prob=win_prob,
        recipient_rand_hash=recipient_rand_hash(rand),
        seed=seed,
        expiration_block=expiration_block,
        creation_round=creation_round,
        creation_round_block_hash=creation_round_block_hash,
    )


@dataclass(frozen=True)
class Recipient:
    """An operator's standing terms: its address, secret and the EV it asks per ticket."""

    address: str
    secret: bytes = field(repr=False)  # never in logs
    ev: int
    params_validity_blocks: int = DEFAULT_PARAMS_VALIDITY_BLOCKS

    def ticket_params(
        self,
        sender: str,
        *,
        gas_price: int,
        current_block: int,
        creation_round: int,
        creation_round_block_hash: bytes,
    ) -> TicketParams:
        """Params priced for the current gas price and valid for `params_validity_blocks`."""
        face_value, win_prob = ticket_economics(self.ev, gas_price)
        return new_ticket_params(
            self.secret,
            recipient=self.address,
            sender=sender,
            face_value=face_value,
            win_prob=win_prob,
            expiration_block=current_block + self.params_validity_blocks,
            creation_round=creation_round,
            creation_round_block_hash=creation_round_block_hash,
        )
