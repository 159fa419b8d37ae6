"""The sender's credit with one recipient, as go-livepeer's pm Balance: tickets cover a fee
minus the credit left over from earlier payments, and what they carry above the fee becomes
the next credit. Over any run of jobs, the EV sent exceeds the fees by less than one ticket.

The credit may be negative: tickets the recipient never took (their params expired on the
way, say) are voided and their EV taken back, and the next tickets cover it."""

from __future__ import annotations

from fractions import Fraction

from .pricing import Amount, tickets_for_fee


def stage_update(fee: Amount, credit: Amount, ev: Amount) -> tuple[int, Fraction]:
    """(tickets to send, credit afterwards) for a payment of `fee` against tickets of EV `ev`."""
    owed = Fraction(fee) - Fraction(credit)
    count = tickets_for_fee(owed, ev) if owed > 0 else 0
    return count, Fraction(credit) + count * Fraction(ev) - Fraction(fee)
