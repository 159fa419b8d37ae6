"""The bounds the gateway keeps on every ticket it signs (chain/bounds.py), one refusal at a
time, against a view of the chain and of its funds."""

import dataclasses
from fractions import Fraction

from eth_account import Account

from chain.bounds import Refusal, SenderView, TicketBounds, check
from chain.pricing import MAX_WIN_PROB, win_prob_for
from chain.recipient import new_ticket_params

SECRET = b"bounds unit test secret, 32 b!!!"
PAYEE = Account.create().address
SENDER = Account.create().address
BOUNDS = TicketBounds(max_face_value=10**18, max_ev_fee_multiple=Fraction(10), min_ticket_ev=10**6,
                      max_ticket_ev=10**17)
# Block 1000 is round 50's first; tickets stay redeemable for 2 rounds of 20 blocks.
VIEW = SenderView(block=1005, round=50, round_start_block=1000, round_length=20, validity_rounds=2,
                  deposit=5 * 10**17, reserve=10**17, round_hashes={50: b"\x05" * 32, 49: b"\x04" * 32})
FEE = Fraction(10**16)


def params(face_value=10**16, win_prob=MAX_WIN_PROB, expiration_block=1020, creation_round=50,
           block_hash=b"\x05" * 32, recipient=PAYEE):
    return new_ticket_params(SECRET, recipient=recipient, sender=SENDER, face_value=face_value,
                             win_prob=win_prob, expiration_block=expiration_block,
                             creation_round=creation_round, creation_round_block_hash=block_hash)


def refusal(p, fee=FEE, view=VIEW, bounds=BOUNDS):
    return check(p, payee=PAYEE, fee=fee, view=view, bounds=bounds)


def test_params_within_bounds_pass():
    assert refusal(params()) is None
    assert refusal(params(creation_round=49, block_hash=b"\x04" * 32)) is None  # last round's
    assert refusal(params(face_value=6 * 10**17, win_prob=win_prob_for(10**15, 6 * 10**17))) is None


def test_each_bound_refuses_with_its_reason():
    assert refusal(params(recipient=Account.create().address)) == Refusal.WRONG_RECIPIENT
    # The whole deposit and reserve in one ticket that always wins: the attack the bounds stop.
    whole = VIEW.deposit + VIEW.reserve
    assert refusal(params(face_value=whole + 1), bounds=dataclasses.replace(
        BOUNDS, max_face_value=10**20, max_ticket_ev=10**20)) == Refusal.FACE_VALUE_FUNDS
    assert refusal(params(face_value=2 * 10**18)) == Refusal.FACE_VALUE_CAP
    assert refusal(params(face_value=10**16, win_prob=1)) == Refusal.EV_TOO_LOW
    assert refusal(params(face_value=2 * 10**17)) == Refusal.EV_TOO_HIGH
    assert refusal(params(), fee=Fraction(10**14)) == Refusal.EV_OVER_FEE  # 100 fees in one ticket
    assert refusal(params(expiration_block=1005)) == Refusal.EXPIRED
    assert refusal(params(expiration_block=1005 + 41)) == Refusal.EXPIRY_TOO_FAR
    assert refusal(params(creation_round=51)) == Refusal.BAD_ROUND  # ahead of the chain
    assert refusal(params(creation_round=48, block_hash=b"\x03" * 32)) == Refusal.BAD_ROUND  # past redeeming
    assert refusal(params(block_hash=b"\x09" * 32)) == Refusal.BAD_ROUND  # not the round's hash


def test_a_job_of_no_fee_signs_nothing_so_its_ev_is_not_bounded_by_it():
    assert refusal(params(), fee=Fraction(0)) is None


def test_when_tickets_stop_being_redeemable():
    assert VIEW.redeemable_until(50) == 1040
    assert VIEW.redeemable_until(49) == 1020
