"""Face value and win probability from a target expected value (EV) per ticket.

A winning ticket costs its recipient one redemption transaction, so the face value is kept well
above that cost (go-livepeer's txCostMultiplier), and the win probability is lowered to keep the EV.
Amounts are in wei; EVs and fees may be fractions of a wei (prices per pixel are tiny), so they are
taken as int or Fraction and compared exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction

from .codec import UINT256_MAX

WIN_PROB_DENOMINATOR = 2**256
MAX_WIN_PROB = UINT256_MAX
# Measured on the TicketBroker here with anvil: about 97k gas for a ticket paid from the deposit,
# 114k from the reserve and 146k for the first reserve claim of a round; rounded up to the worst.
DEFAULT_REDEEM_GAS = 150_000
# As go-livepeer's default: redemption costs at most 1% of what a winning ticket pays.
DEFAULT_TX_COST_MULTIPLIER = 100

Amount = int | Fraction


def face_value_for(ev: Amount, gas_cost: int, multiplier: int = DEFAULT_TX_COST_MULTIPLIER) -> int:
    """max(EV, gas_cost * multiplier), rounded up to whole wei; never below 1 wei."""
    _require_positive("ev", ev)
    return max(math.ceil(ev), gas_cost * multiplier, 1)


def win_prob_for(ev: Amount, face_value: int) -> int:
    """EV * 2**256 / face_value, rounded down (never pays more than the EV) and clamped to the
    largest uint256, which is a ticket that always wins."""
    _require_positive("ev", ev)
    if face_value <= 0:
        raise ValueError("face value must be positive")
    return min(math.floor(Fraction(ev) * WIN_PROB_DENOMINATOR / face_value), MAX_WIN_PROB)


def ticket_economics(
    ev: Amount,
    gas_price: int,
    *,
    redeem_gas: int = DEFAULT_REDEEM_GAS,
    multiplier: int = DEFAULT_TX_COST_MULTIPLIER,
) -> tuple[int, int]:
    """(face_value, win_prob) for a ticket worth `ev` when gas costs `gas_price` wei."""
    face_value = face_value_for(ev, gas_price * redeem_gas, multiplier)
    return face_value, win_prob_for(ev, face_value)


def ticket_ev(face_value: int, win_prob: int) -> Fraction:
    """The expected value a ticket actually carries: face_value * win_prob / 2**256."""
    return Fraction(face_value * win_prob, WIN_PROB_DENOMINATOR)


def tickets_for_fee(fee: Amount, ev: Amount) -> int:
    """How many tickets of EV `ev` cover `fee` (rounded up; 0 for a zero fee)."""
    if fee < 0:
        raise ValueError("fee cannot be negative")
    _require_positive("ev", ev)
    return math.ceil(Fraction(fee) / Fraction(ev))


def _require_positive(name: str, value: Amount) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
