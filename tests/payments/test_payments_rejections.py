"""The redeemer refuses bad tickets, each with its reason logged, counted and told to the
gateway: forged, altered, expired, for another recipient, from a sender without funds, and
payments that do not parse; a copy of a payment is answered as the first was. Against the
stack's chain, in-process."""

import dataclasses

import pytest
from eth_account import Account

from chain.broker import TicketBroker
from app.settings import gateway_key
from tasks.settings import Env
from chain.payment import Payment
from chain.recipient import Recipient, TicketParams
from chain.redeemer import Redeemer
from chain.sender import TicketSender
from workers.redeemer_store import OperatorStore
from devstack.chain import DEV_TICKET_EV

SECRET = b"rejection test operator secret!!"


@pytest.fixture
def broker(stack):
    return TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"])  # reads only


@pytest.fixture
def operator():
    return Recipient(Account.create().address, SECRET, DEV_TICKET_EV, 1000)


@pytest.fixture
def redeemer(broker, operator, tmp_path):
    acks = []
    r = Redeemer(operator, broker, OperatorStore(tmp_path / "operator.sqlite3"),
                 acknowledge=lambda job_id, results: acks.append((job_id, results)))
    r.acks = acks
    return r


def make_params(broker, address: str, sender: str, secret: bytes = SECRET, validity: int = 1000) -> TicketParams:
    round_, block_hash = broker.ticket_round()
    recipient = Recipient(address, secret, DEV_TICKET_EV, params_validity_blocks=validity)
    return recipient.ticket_params(sender, gas_price=broker.gas_price(), current_block=broker.block_number(),
                                   creation_round=round_, creation_round_block_hash=block_hash)


def test_each_bad_ticket_is_refused_with_its_reason(stack, broker, operator, redeemer, caplog):
    key = gateway_key(Env(stack.env))
    gateway = Account.from_key(key).address
    params = make_params(broker, operator.address, gateway)
    good = TicketSender(key).issue(params, 2)

    assert redeemer.receive("job-good", good.to_dict()) == {"accepted": 2, "winners": 2, "rejected": {},
                                                            "repeats": 0}
    assert redeemer.receive("job-good", good.to_dict()) == {"accepted": 0, "winners": 0, "rejected": {},
                                                            "repeats": 2}

    forger = Account.create().key
    forged = Payment(gateway, params, tuple(TicketSender(forger).issue(params, 1).tickets))
    # The forger signs nonce 1 again: the signature check comes before the nonce check.
    assert redeemer.receive("job-forged", forged.to_dict())["rejected"] == {"bad_signature": 1}

    altered = dataclasses.replace(params, face_value=params.face_value * 2)
    assert redeemer.receive("job-altered", TicketSender(key).issue(altered, 1).to_dict())["rejected"] == \
        {"bad_rand_hash": 1}

    expired = make_params(broker, operator.address, gateway, validity=0)
    assert redeemer.receive("job-expired", TicketSender(key).issue(expired, 1).to_dict())["rejected"] == \
        {"expired": 1}

    other = make_params(broker, Account.create().address, gateway, secret=b"another operator's secret!!")
    assert redeemer.receive("job-other", TicketSender(key).issue(other, 1).to_dict())["rejected"] == \
        {"wrong_recipient": 1}

    broke = Account.create().key  # never funded a deposit
    unfunded = make_params(broker, operator.address, Account.from_key(broke).address)
    assert redeemer.receive("job-broke", TicketSender(broke).issue(unfunded, 1).to_dict())["rejected"] == \
        {"no_funds": 1}

    assert redeemer.receive("job-junk", {"sender": "nobody"})["rejected"] == {"malformed": 1}

    assert redeemer.store.rejections() == {
        "bad_signature": 1, "bad_rand_hash": 1, "expired": 1, "wrong_recipient": 1,
        "no_funds": 1, "malformed": 1,
    }
    for reason in ("bad_signature", "bad_rand_hash", "expired", "wrong_recipient", "no_funds",
                   "malformed"):
        assert f"refused: {reason}" in caplog.text
    told = [(job_id, [(r["rejection"], r["repeat"]) for r in results]) for job_id, results in redeemer.acks]
    assert told[:2] == [("job-good", [(None, False)] * 2), ("job-good", [(None, True)] * 2)]
    assert dict(told)["job-broke"] == [("no_funds", False)]
    assert len(redeemer.store.pending()) == 2  # only the good winners are kept


def test_params_whose_rand_was_revealed_take_no_more_tickets(stack, broker, operator, redeemer):
    key = gateway_key(Env(stack.env))
    params = make_params(broker, operator.address, Account.from_key(key).address)
    sender = TicketSender(key)
    redeemer.receive("job-1", sender.issue(params, 1).to_dict())
    [kept] = redeemer.store.pending()
    redeemer.store.mark_submitted(kept.hash, "0x" + "00" * 32)  # its rand is now public on chain
    # Fresh nonces on the same params: the sender could pick losers now, so all are refused.
    assert redeemer.receive("job-2", sender.issue(params, 2).to_dict())["rejected"] == {"replayed": 2}


def test_a_payment_is_retried_whole_when_the_chain_is_down(operator, redeemer, stack):
    key = gateway_key(Env(stack.env))
    params = make_params(redeemer.broker, operator.address, Account.from_key(key).address)
    payment = TicketSender(key).issue(params, 1).to_dict()

    def unreachable(*args, **kwargs):
        raise ConnectionError("connection refused")

    redeemer.broker.sender_info = unreachable  # the node goes away halfway through the reads
    with pytest.raises(ConnectionError):
        redeemer.receive("job-1", payment)
    del redeemer.broker.sender_info
    # Nothing was recorded on the failed try (no nonce burnt), so the retry is accepted.
    assert redeemer.receive("job-1", payment)["accepted"] == 1
    assert redeemer.store.answers() == 1
