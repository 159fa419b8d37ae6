"""EIP-191 (personal_sign) signatures over 32-byte ticket hashes, as go-livepeer's crypto package
and the TicketBroker check them."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct

from .codec import to_address
from .ticket import Ticket, ticket_hash

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
SIGNATURE_LENGTH = 65


class InvalidSignature(ValueError):
    """A signature the TicketBroker would refuse, whatever it recovers to."""


def address_of(private_key) -> str:
    """The checksummed address a private key signs for."""
    return Account.from_key(private_key).address


def sign_hash(message_hash: bytes, private_key) -> bytes:
    """personal_sign over a 32-byte hash: r || s || v with v 27/28 and low s."""
    if len(message_hash) != 32:
        raise ValueError(f"expected a 32-byte hash, got {len(message_hash)} bytes")
    signed = Account.sign_message(encode_defunct(primitive=message_hash), private_key)
    return bytes(signed.signature)


def sign_ticket(ticket: Ticket, private_key) -> bytes:
    return sign_hash(ticket_hash(ticket), private_key)


def check_signature_form(sig: bytes) -> None:
    """Refuse what the contract refuses: other lengths, v outside 27/28, and high s (the
    malleable twin of a valid signature, which would let a ticket be replayed under a new sig)."""
    if len(sig) != SIGNATURE_LENGTH:
        raise InvalidSignature(f"signature must be {SIGNATURE_LENGTH} bytes, got {len(sig)}")
    v = sig[64]
    if v not in (27, 28):
        raise InvalidSignature(f"signature v must be 27 or 28, got {v}")
    s = int.from_bytes(sig[32:64], "big")
    if s > SECP256K1_HALF_N:
        raise InvalidSignature("signature s is above secp256k1n/2 (malleable)")
    if s == 0 or int.from_bytes(sig[:32], "big") == 0:
        raise InvalidSignature("signature r and s must be non-zero")


def recover_signer(ticket_or_hash: Ticket | bytes, sig: bytes) -> str:
    """The checksummed address that signed a ticket (or a 32-byte hash); InvalidSignature if
    the signature is malformed or recovers to nothing."""
    message_hash = ticket_hash(ticket_or_hash) if isinstance(ticket_or_hash, Ticket) else ticket_or_hash
    if len(message_hash) != 32:
        raise ValueError(f"expected a 32-byte hash, got {len(message_hash)} bytes")
    sig = bytes(sig)
    check_signature_form(sig)
    try:
        signer = Account.recover_message(encode_defunct(primitive=message_hash), signature=sig)
    except Exception as exc:  # eth_keys raises several types for points off the curve
        raise InvalidSignature(f"signature does not recover: {exc}") from exc
    return to_address(signer)


def verify_signature(address: str, ticket_or_hash: Ticket | bytes, sig: bytes) -> bool:
    try:
        return recover_signer(ticket_or_hash, sig) == to_address(address)
    except InvalidSignature:
        return False
