"""Operator side: check a received ticket before counting it as paid.

Each check names its failure so the redeemer can log, count and answer precisely. The checks that
only the operator can make (the rand behind the hash, the params' expiry, nonce replay) come from
go-livepeer's recipient; the ones the TicketBroker makes again (signature, round) are repeated here
so a bad ticket is refused at once, not when a redemption reverts.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Protocol

from .codec import ZERO_ADDRESS, to_address
from .payment import Payment
from .recipient import recipient_rand, recipient_rand_hash
from .signature import verify_signature
from .ticket import Ticket
from .winning import is_winning

DEFAULT_TICKET_VALIDITY_ROUNDS = 2  # the TicketBroker's ticketValidityPeriod, as Livepeer's


class Rejection(str, enum.Enum):
    WRONG_RECIPIENT = "wrong_recipient"
    ZERO_SENDER = "zero_sender"
    BAD_RAND_HASH = "bad_rand_hash"  # params altered, or not issued by this operator/secret
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    # Not the validator's own checks: the redeemer refuses these around it.
    NO_FUNDS = "no_funds"  # the sender's deposit and reserve cannot pay a winning ticket
    MALFORMED = "malformed"  # a payment that does not even parse


class SeenNonces(Protocol):
    def add(self, sender: str, recipient_rand_hash: bytes, nonce: int, expiration_block: int) -> bool:
        """Record a nonce; False if it was already there. Atomic across callers. Entries may be
        dropped after `expiration_block`, when the params' tickets are refused anyway."""


class MemorySeenNonces:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, bytes, int], int] = {}
        self._lock = threading.Lock()

    def add(self, sender: str, recipient_rand_hash: bytes, nonce: int, expiration_block: int) -> bool:
        key = (to_address(sender), bytes(recipient_rand_hash), nonce)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = expiration_block
            return True

    def prune(self, current_block: int) -> None:
        with self._lock:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > current_block}

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True)
class Verdict:
    ticket: Ticket
    sig: bytes
    rejection: Rejection | None = None
    recipient_rand: int | None = None  # set once the rand hash checks out

    @property
    def ok(self) -> bool:
        return self.rejection is None

    @property
    def winning(self) -> bool:
        return self.ok and is_winning(self.sig, self.recipient_rand, self.ticket.win_prob)


class TicketValidator:
    def __init__(
        self,
        recipient: str,
        secret: bytes,
        seen: SeenNonces | None = None,
        ticket_validity_rounds: int = DEFAULT_TICKET_VALIDITY_ROUNDS,
    ):
        self.recipient = to_address(recipient)
        self._secret = bytes(secret)
        self.seen = seen if seen is not None else MemorySeenNonces()
        self.ticket_validity_rounds = ticket_validity_rounds

    def validate(self, ticket: Ticket, sig: bytes, **where) -> Verdict:
        """Check one ticket (`check`'s arguments) and record its nonce, only when every other
        check passed, so a refused ticket does not burn it."""
        verdict = self.check(ticket, sig, **where)
        if verdict.ok and not self.seen.add(ticket.sender, ticket.recipient_rand_hash,
                                            ticket.sender_nonce, where["expiration_block"]):
            return Verdict(ticket, sig, Rejection.REPLAYED)
        return verdict

    def check(
        self,
        ticket: Ticket,
        sig: bytes,
        *,
        seed: int,
        expiration_block: int,
        current_block: int,
        current_round: int | None = None,
    ) -> Verdict:
        """Every check but the nonce's, recording nothing (for a caller that keeps nonces and
        winners together, chain/redeemer.py). `current_round` None skips the round check
        (no chain)."""
        verdict = self.authenticate(ticket, sig, seed=seed, expiration_block=expiration_block)
        if verdict.ok and self._expired(ticket, expiration_block, current_block, current_round):
            return Verdict(ticket, sig, Rejection.EXPIRED)
        return verdict

    def authenticate(self, ticket: Ticket, sig: bytes, *, seed: int, expiration_block: int) -> Verdict:
        """The checks that depend on the ticket alone: ours, params ours and unaltered,
        signed by its sender. A ticket that passes them is the sender's own word."""
        if ticket.recipient != self.recipient:
            return Verdict(ticket, sig, Rejection.WRONG_RECIPIENT)
        if ticket.sender == ZERO_ADDRESS:
            return Verdict(ticket, sig, Rejection.ZERO_SENDER)
        rand = self._rand(ticket, seed, expiration_block)
        if recipient_rand_hash(rand) != ticket.recipient_rand_hash:
            return Verdict(ticket, sig, Rejection.BAD_RAND_HASH)
        if not verify_signature(ticket.sender, ticket, sig):
            return Verdict(ticket, sig, Rejection.BAD_SIGNATURE)
        return Verdict(ticket, sig, None, rand)

    def validate_payment(
        self, payment: Payment, *, current_block: int, current_round: int | None = None
    ) -> list[Verdict]:
        params = payment.params
        return [
            self.validate(
                st.ticket,
                st.sig,
                seed=params.seed,
                expiration_block=params.expiration_block,
                current_block=current_block,
                current_round=current_round,
            )
            for st in payment.signed_tickets()
        ]

    def _rand(self, ticket: Ticket, seed: int, expiration_block: int) -> int:
        return recipient_rand(
            self._secret,
            seed=seed,
            sender=ticket.sender,
            face_value=ticket.face_value,
            win_prob=ticket.win_prob,
            expiration_block=expiration_block,
            creation_round=ticket.creation_round,
            creation_round_block_hash=ticket.creation_round_block_hash,
        )

    def _expired(self, ticket: Ticket, expiration_block: int, current_block: int, current_round: int | None) -> bool:
        if expiration_block <= current_block:
            return True
        return current_round is not None and ticket.creation_round + self.ticket_validity_rounds <= current_round
