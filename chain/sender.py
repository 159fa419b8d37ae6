"""Gateway side: turn a fee into signed tickets against an operator's params.

Nonces must never repeat for the same (recipient, recipientRandHash): the recipient rejects a
repeat, and a repeated nonce with the same params is the same ticket. Several gateway processes
share one key, so the nonce source is injected: in memory here, a PostgreSQL row in production.
"""

from __future__ import annotations

import threading
from typing import Protocol

from eth_account import Account

from .codec import to_address
from .payment import Payment
from .pricing import tickets_for_fee
from .recipient import TicketParams
from .signature import sign_ticket

DEFAULT_MAX_TICKETS = 1_000


class NonceSource(Protocol):
    def reserve(self, recipient: str, recipient_rand_hash: bytes, count: int) -> int:
        """Claim `count` consecutive unused nonces and return the first; atomic across callers."""


class MemoryNonceSource:
    """Nonces from 1 upwards per (recipient, recipientRandHash), as go-livepeer's sender."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, bytes], int] = {}
        self._lock = threading.Lock()

    def reserve(self, recipient: str, recipient_rand_hash: bytes, count: int) -> int:
        if count < 0:
            raise ValueError("count cannot be negative")
        key = (to_address(recipient), bytes(recipient_rand_hash))
        with self._lock:
            first = self._next.get(key, 1)
            self._next[key] = first + count
        return first


class TooManyTickets(ValueError):
    """The fee needs more tickets than allowed: the params' EV is far too small for it."""


class TicketSender:
    def __init__(self, private_key, nonces: NonceSource | None = None, max_tickets: int = DEFAULT_MAX_TICKETS):
        self._account = Account.from_key(private_key)
        self._nonces = nonces if nonces is not None else MemoryNonceSource()
        self.max_tickets = max_tickets

    @property
    def address(self) -> str:
        return self._account.address

    def issue(self, params: TicketParams, count: int) -> Payment:
        """`count` tickets with fresh nonces, each signed."""
        if count > self.max_tickets:
            raise TooManyTickets(f"{count} tickets exceeds the limit of {self.max_tickets}")
        first = self._nonces.reserve(params.recipient, params.recipient_rand_hash, count)
        key = self._account.key
        signed = tuple(
            (nonce, sign_ticket(params.ticket(self.address, nonce), key)) for nonce in range(first, first + count)
        )
        return Payment(sender=self.address, params=params, tickets=signed)

    def pay(self, params: TicketParams, fee) -> Payment:
        """Enough tickets that their total EV covers `fee` (wei, int or Fraction)."""
        return self.issue(params, tickets_for_fee(fee, params.ev))
