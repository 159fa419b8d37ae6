"""Face value, win probability and ticket counts."""

from fractions import Fraction

import pytest

from chain import MAX_WIN_PROB, face_value_for, ticket_economics, ticket_ev, tickets_for_fee, win_prob_for
from chain.pricing import DEFAULT_REDEEM_GAS, DEFAULT_TX_COST_MULTIPLIER


def test_face_value_is_the_larger_of_ev_and_gas_cost_times_multiplier():
    assert face_value_for(10**18, gas_cost=1_000, multiplier=100) == 10**18
    assert face_value_for(10, gas_cost=1_000, multiplier=100) == 100_000
    assert face_value_for(Fraction(1, 3), gas_cost=0) == 1  # whole wei, never zero


def test_win_prob_keeps_the_ev():
    assert win_prob_for(1, 4) == 2**254
    assert win_prob_for(Fraction(1, 3), 1) == 2**256 // 3  # rounded down: never overpays


def test_win_prob_clamps_to_max():
    assert win_prob_for(10, 10) == MAX_WIN_PROB
    assert win_prob_for(11, 10) == MAX_WIN_PROB


def test_ticket_economics_uses_gas_price():
    gas_price = 2 * 10**9
    face_value, win_prob = ticket_economics(10**12, gas_price)
    assert face_value == gas_price * DEFAULT_REDEEM_GAS * DEFAULT_TX_COST_MULTIPLIER
    assert abs(ticket_ev(face_value, win_prob) - 10**12) < 1
    assert ticket_ev(face_value, win_prob) <= 10**12


def test_tickets_for_fee_rounds_up():
    assert tickets_for_fee(0, 5) == 0
    assert tickets_for_fee(10, 5) == 2
    assert tickets_for_fee(11, 5) == 3
    assert tickets_for_fee(Fraction(1, 2), Fraction(1, 3)) == 2


@pytest.mark.parametrize("call", [lambda: tickets_for_fee(1, 0), lambda: tickets_for_fee(-1, 1),
                                  lambda: win_prob_for(0, 1), lambda: win_prob_for(1, 0)])
def test_bad_inputs_raise(call):
    with pytest.raises(ValueError):
        call()
