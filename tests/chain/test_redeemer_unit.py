"""The redeemer's branches against a stub of the Broker protocol (no chain): answers and
winners kept together, copies answered alike, refusals that burn no nonce, a chain that
fails before anything is written, and redemptions that count only once deep enough."""

import pytest
from eth_account import Account

from chain.pricing import MAX_WIN_PROB
from chain.recipient import Recipient, new_ticket_params
from chain.redeemer import Redeemer
from chain.sender import TicketSender
from chain.ticket import ticket_hash
from stub_broker import StubBroker
from workers.redeemer_store import OperatorStore

SECRET = b"redeemer unit test secret 32 b!!"
FACE = 10**15


@pytest.fixture
def gateway():
    return TicketSender(Account.create().key)


@pytest.fixture
def broker(gateway):
    stub = StubBroker()
    stub.fund(gateway.address, deposit=100 * FACE)
    return stub


def make_redeemer(broker, tmp_path, **options) -> Redeemer:
    operator = Recipient(Account.create().address, SECRET, FACE)
    acks = []
    redeemer = Redeemer(operator, broker, OperatorStore(tmp_path / "op.sqlite3", options.pop("between", None)),
                        acknowledge=lambda job_id, answers: acks.append((job_id, answers)), **options)
    redeemer.acks = acks
    return redeemer


@pytest.fixture
def redeemer(broker, tmp_path):
    return make_redeemer(broker, tmp_path, max_wait=0)  # everything kept is due at once


def pay(redeemer, gateway, count=2, *, expires=150) -> dict:
    """Tickets on the same params each time (the broker starts at block 100, round 5)."""
    params = new_ticket_params(SECRET, recipient=redeemer.recipient.address, sender=gateway.address,
                               face_value=FACE, win_prob=MAX_WIN_PROB, expiration_block=expires,
                               creation_round=5,
                               creation_round_block_hash=b"\x01" * 32, seed=7)
    return gateway.issue(params, count).to_dict()


def answers(redeemer, job_id):
    return [(a["rejection"], a["winning"], a["repeat"]) for j, results in redeemer.acks if j == job_id
            for a in results]


def test_winners_kept_with_their_answers_and_a_copy_answered_alike(redeemer, gateway):
    payment = pay(redeemer, gateway)
    assert redeemer.receive("job", payment) == {"accepted": 2, "winners": 2, "rejected": {}, "repeats": 0}
    assert len(redeemer.store.pending()) == 2 and redeemer.store.answers() == 2
    # The gateway sends it again (it missed the receipt): the same answer, nothing kept twice.
    assert redeemer.receive("job", payment) == {"accepted": 0, "winners": 0, "rejected": {}, "repeats": 2}
    assert answers(redeemer, "job") == [(None, True, False)] * 2 + [(None, True, True)] * 2
    assert len(redeemer.store.pending()) == 2


def test_expired_is_a_lasting_answer(redeemer, gateway):
    payment = pay(redeemer, gateway, 1, expires=105)
    redeemer.broker.mine(10)
    assert redeemer.receive("job", payment)["rejected"] == {"expired": 1}
    assert redeemer.store.answers() == 1  # kept: a copy later is told the same
    redeemer.broker.reorg(redeemer.broker.block - 8)  # even should the chain go back
    assert redeemer.receive("job", payment)["repeats"] == 1
    assert answers(redeemer, "job")[-1] == ("expired", False, True)
    assert redeemer.store.pending() == []


def test_no_funds_burns_no_nonce(redeemer, gateway):
    payment = pay(redeemer, gateway, 1)
    redeemer.broker.fund(gateway.address, deposit=FACE // 2)
    assert redeemer.receive("job", payment)["rejected"] == {"no_funds": 1}
    assert redeemer.store.answers() == 0
    redeemer.broker.fund(gateway.address, deposit=10 * FACE)  # the gateway funds its deposit
    assert redeemer.receive("job", payment) == {"accepted": 1, "winners": 1, "rejected": {}, "repeats": 0}


def test_a_chain_error_comes_before_anything_is_written(redeemer, gateway):
    payment = pay(redeemer, gateway, 1)
    redeemer.broker.down = True
    with pytest.raises(ConnectionError):
        redeemer.receive("job", payment)
    assert redeemer.store.answers() == 0 and redeemer.acks == []
    redeemer.broker.down = False
    assert redeemer.receive("job", payment)["accepted"] == 1


def test_a_forgery_neither_fixes_nor_learns_the_answer_to_a_real_nonce(redeemer, gateway):
    real = pay(redeemer, gateway, 1)
    forged = dict(real, tickets=[{**real["tickets"][0], "sig": "0x" + "11" * 65}])
    assert redeemer.receive("forged", forged)["rejected"] == {"bad_signature": 1}
    assert redeemer.receive("job", real)["accepted"] == 1
    assert redeemer.receive("forged", forged)["rejected"] == {"bad_signature": 1}
    assert answers(redeemer, "forged") == [("bad_signature", False, False)] * 2


def test_params_whose_rand_was_revealed_take_no_more_tickets(redeemer, gateway):
    redeemer.receive("job-1", pay(redeemer, gateway, 1))
    assert redeemer.redeem_due() == 1  # its rand is public on chain now
    again = pay(redeemer, gateway, 3)  # fresh nonces on the same params
    assert redeemer.receive("job-2", again)["rejected"] == {"replayed": 3}


def test_killed_between_answers_and_winners_loses_nothing(broker, gateway, tmp_path):
    def killed():
        raise SystemExit("SIGKILL")  # the process is gone: its transaction never commits

    crashing = make_redeemer(broker, tmp_path, between=killed)
    payment = pay(crashing, gateway, 2)
    with pytest.raises(SystemExit):
        crashing.receive("job", payment)
    restarted = make_redeemer(broker, tmp_path)
    restarted.recipient = crashing.recipient
    assert restarted.store.answers() == 0  # no nonce marked seen without its winner
    assert restarted.receive("job", payment) == {"accepted": 2, "winners": 2, "rejected": {}, "repeats": 0}


def test_a_redemption_counts_once_deep_enough_and_a_reorg_redeems_again(broker, gateway, tmp_path):
    redeemer = make_redeemer(broker, tmp_path, max_wait=0, confirmations=3)
    redeemer.receive("job", pay(redeemer, gateway, 2))
    fork = broker.block
    assert redeemer.redeem_due() == 2
    assert redeemer.store.summary()["winners"]["submitted"] == 2
    broker.mine(1)
    redeemer.redeem_due()
    assert redeemer.store.summary()["winners"]["submitted"] == 2  # not deep enough yet

    broker.reorg(fork)  # the redemption's block is gone
    broker.mine(2)
    redeemer.redeem_due()  # seen undone, and redeemed again
    assert broker.transactions == 2
    broker.mine(3)
    redeemer.redeem_due()
    assert redeemer.store.summary()["winners"] == {"pending": 0, "submitted": 0, "redeemed": 2, "failed": 0}


def test_no_retry_ceiling_until_the_contract_refuses(broker, gateway, tmp_path):
    redeemer = make_redeemer(broker, tmp_path, max_wait=0)
    redeemer.receive("job", pay(redeemer, gateway, 2))
    for winner in redeemer.store.pending():
        broker.skip.add(ticket_hash(winner.ticket))  # the batch skips them, for no reason of theirs
    for _ in range(10):
        redeemer.redeem_due()
    assert [w["attempts"] for w in redeemer.store.winners() if w["status"] == "pending"] == [10, 10]
    broker.mine(broker.round_length * broker.validity)  # their creation round expired
    redeemer.redeem_due()
    assert [(w["status"], w["reason"]) for w in redeemer.store.winners()] == [("failed", "ticket is expired")] * 2
