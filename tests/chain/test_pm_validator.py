"""The operator's checks on received tickets, one test per rejection."""

import pytest

from chain import MemorySeenNonces, Rejection, TicketSender, TicketValidator, new_ticket_params, sign_ticket
from chain.codec import ZERO_ADDRESS
from chain.pricing import MAX_WIN_PROB

SECRET = b"s" * 32
GATEWAY_KEY = "0x" + "33" * 32
OPERATOR = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ELSEWHERE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
NOW = dict(current_block=50, current_round=3)


@pytest.fixture
def sender():
    return TicketSender(GATEWAY_KEY)


def make_params(sender_address: str, win_prob: int = MAX_WIN_PROB, recipient: str = OPERATOR):
    return new_ticket_params(
        SECRET,
        recipient=recipient,
        sender=sender_address,
        face_value=1_000,
        win_prob=win_prob,
        expiration_block=100,
        creation_round=3,
        creation_round_block_hash=b"\x03" * 32,
    )


def check(validator, payment, **now):
    (verdict,) = validator.validate_payment(payment, **{**NOW, **now})
    return verdict


def test_valid_winning_ticket(sender):
    verdict = check(TicketValidator(OPERATOR, SECRET), sender.issue(make_params(sender.address), 1))
    assert verdict.ok and verdict.rejection is None
    assert verdict.winning and verdict.recipient_rand is not None


def test_valid_losing_ticket(sender):
    verdict = check(TicketValidator(OPERATOR, SECRET), sender.issue(make_params(sender.address, win_prob=0), 1))
    assert verdict.ok and not verdict.winning


def test_wrong_recipient(sender):
    payment = sender.issue(make_params(sender.address, recipient=ELSEWHERE), 1)
    assert check(TicketValidator(OPERATOR, SECRET), payment).rejection is Rejection.WRONG_RECIPIENT


def test_zero_sender(sender):
    params = make_params(ZERO_ADDRESS)
    ticket = params.ticket(ZERO_ADDRESS, 1)
    verdict = TicketValidator(OPERATOR, SECRET).validate(
        ticket, b"\x00" * 65, seed=params.seed, expiration_block=params.expiration_block, **NOW
    )
    assert verdict.rejection is Rejection.ZERO_SENDER


def test_bad_rand_hash_when_params_are_altered(sender):
    params = make_params(sender.address)
    ticket = params.ticket(sender.address, 1)
    tampered = type(ticket)(**{**ticket.__dict__, "face_value": ticket.face_value * 2})
    verdict = TicketValidator(OPERATOR, SECRET).validate(
        tampered, sign_ticket(tampered, GATEWAY_KEY), seed=params.seed,
        expiration_block=params.expiration_block, **NOW,
    )
    assert verdict.rejection is Rejection.BAD_RAND_HASH


def test_bad_rand_hash_for_another_secret(sender):
    payment = sender.issue(make_params(sender.address), 1)
    assert check(TicketValidator(OPERATOR, b"t" * 32), payment).rejection is Rejection.BAD_RAND_HASH


def test_bad_rand_hash_when_params_were_for_another_sender(sender):
    params = make_params(ELSEWHERE)  # the operator priced these for someone else
    assert check(TicketValidator(OPERATOR, SECRET), sender.issue(params, 1)).rejection is Rejection.BAD_RAND_HASH


def test_bad_signature(sender):
    params = make_params(sender.address)
    ticket = params.ticket(sender.address, 1)
    validator = TicketValidator(OPERATOR, SECRET)
    for sig in (sign_ticket(ticket, "0x" + "44" * 32), b"\x01" * 64, b""):
        verdict = validator.validate(ticket, sig, seed=params.seed, expiration_block=params.expiration_block, **NOW)
        assert verdict.rejection is Rejection.BAD_SIGNATURE


def test_expired_by_block(sender):
    payment = sender.issue(make_params(sender.address), 1)
    assert check(TicketValidator(OPERATOR, SECRET), payment, current_block=100).rejection is Rejection.EXPIRED


def test_expired_by_round(sender):
    payment = sender.issue(make_params(sender.address), 1)  # creation round 3, validity 2
    validator = TicketValidator(OPERATOR, SECRET)
    assert check(validator, payment, current_round=5).rejection is Rejection.EXPIRED
    assert check(validator, payment, current_round=4).ok


def test_replayed(sender):
    validator = TicketValidator(OPERATOR, SECRET)
    payment = sender.issue(make_params(sender.address), 1)
    assert check(validator, payment).ok
    assert check(validator, payment).rejection is Rejection.REPLAYED


def test_refused_ticket_does_not_burn_its_nonce(sender):
    validator = TicketValidator(OPERATOR, SECRET)
    payment = sender.issue(make_params(sender.address), 1)
    assert check(validator, payment, current_block=100).rejection is Rejection.EXPIRED
    assert check(validator, payment).ok


def test_injected_seen_set_and_pruning(sender):
    seen = MemorySeenNonces()
    validator = TicketValidator(OPERATOR, SECRET, seen=seen)
    validator.validate_payment(sender.issue(make_params(sender.address), 3), **NOW)
    assert len(seen) == 3
    seen.prune(current_block=99)
    assert len(seen) == 3
    seen.prune(current_block=100)  # the params expired at 100: their nonces can go
    assert len(seen) == 0
