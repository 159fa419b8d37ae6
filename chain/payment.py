"""What a sender sends a recipient: the params it paid against and one (nonce, sig) per ticket,
as go-livepeer's net.Payment does, so a batch of tickets repeats no common field."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .codec import hex_to_bytes, to_address, to_hex
from .recipient import TicketParams
from .ticket import Ticket, ticket_hash


@dataclass(frozen=True)
class SignedTicket:
    ticket: Ticket
    sig: bytes

    @property
    def hash(self) -> bytes:
        return ticket_hash(self.ticket)


@dataclass(frozen=True)
class Payment:
    sender: str
    params: TicketParams
    tickets: tuple[tuple[int, bytes], ...]  # (sender_nonce, sig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sender", to_address(self.sender))
        object.__setattr__(self, "tickets", tuple((int(n), bytes(s)) for n, s in self.tickets))

    @property
    def ev(self) -> Fraction:
        """The value this payment carries on average."""
        return self.params.ev * len(self.tickets)

    def signed_tickets(self) -> list[SignedTicket]:
        return [SignedTicket(self.params.ticket(self.sender, nonce), sig) for nonce, sig in self.tickets]

    def to_dict(self) -> dict:
        return {
            "sender": self.sender,
            "params": self.params.to_dict(),
            "tickets": [{"sender_nonce": n, "sig": to_hex(s)} for n, s in self.tickets],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Payment":
        return cls(
            sender=data["sender"],
            params=TicketParams.from_dict(data["params"]),
            tickets=tuple((int(t["sender_nonce"]), hex_to_bytes(t["sig"])) for t in data["tickets"]),
        )
