"""The operator's recipient rand (an HMAC, so it stores nothing) and its ticket params."""

import json

import pytest

from chain import Recipient, TicketParams, new_ticket_params, recipient_rand, recipient_rand_hash
from chain.pricing import ticket_economics

SECRET = b"s" * 32
SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
RECIPIENT = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
BASE = dict(
    seed=123,
    sender=SENDER,
    face_value=10**15,
    win_prob=2**250,
    expiration_block=1_000,
    creation_round=7,
    creation_round_block_hash=b"\x07" * 32,
)


def test_rand_is_deterministic():
    assert recipient_rand(SECRET, **BASE) == recipient_rand(SECRET, **BASE)
    assert 0 <= recipient_rand(SECRET, **BASE) < 2**256


@pytest.mark.parametrize(
    "field, value",
    [
        ("seed", 124),
        ("sender", RECIPIENT),
        ("face_value", 10**15 + 1),
        ("win_prob", 2**250 + 1),
        ("expiration_block", 1_001),
        ("creation_round", 8),
        ("creation_round_block_hash", b"\x08" * 32),
    ],
)
def test_rand_depends_on_every_field(field, value):
    assert recipient_rand(SECRET, **{**BASE, field: value}) != recipient_rand(SECRET, **BASE)


def test_rand_depends_on_secret():
    assert recipient_rand(b"t" * 32, **BASE) != recipient_rand(SECRET, **BASE)


def test_short_secret_refused():
    with pytest.raises(ValueError, match="secret"):
        recipient_rand(b"short", **BASE)


def test_new_params_commit_to_the_rand():
    fields = {k: v for k, v in BASE.items() if k != "seed"}
    params = new_ticket_params(SECRET, recipient=RECIPIENT, **fields, seed=123)
    assert params.recipient_rand_hash == recipient_rand_hash(recipient_rand(SECRET, **BASE))
    fresh = new_ticket_params(SECRET, recipient=RECIPIENT, **fields)
    assert fresh.seed != params.seed and fresh.recipient_rand_hash != params.recipient_rand_hash


def test_params_dict_round_trip_through_json():
    fields = {k: v for k, v in BASE.items() if k not in ("seed", "sender")}
    params = new_ticket_params(SECRET, recipient=RECIPIENT, sender=SENDER, **fields)
    data = json.loads(json.dumps(params.to_dict()))
    assert isinstance(data["seed"], str) and isinstance(data["win_prob"], str)
    assert TicketParams.from_dict(data) == params


def test_params_make_tickets():
    fields = {k: v for k, v in BASE.items() if k not in ("seed", "sender")}
    params = new_ticket_params(SECRET, recipient=RECIPIENT, sender=SENDER, **fields)
    ticket = params.ticket(SENDER, 5)
    assert (ticket.recipient, ticket.sender, ticket.sender_nonce) == (RECIPIENT, SENDER, 5)
    assert ticket.recipient_rand_hash == params.recipient_rand_hash
    assert ticket.creation_round == 7


def test_recipient_prices_params_and_hides_its_secret():
    operator = Recipient(RECIPIENT, SECRET, ev=10**12, params_validity_blocks=50)
    params = operator.ticket_params(
        SENDER, gas_price=10**9, current_block=100, creation_round=5, creation_round_block_hash=b"\x05" * 32
    )
    assert (params.face_value, params.win_prob) == ticket_economics(10**12, 10**9)
    assert params.expiration_block == 150
    assert SECRET.decode() not in repr(operator)
