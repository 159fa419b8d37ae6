"""The pieces of payments that need no servers: the credit balance, the redeem policy, the
operator's store, fees, settings, the cached chain view, and a worker whose chain is down."""

import threading
import time
from fractions import Fraction

import pytest
from eth_account import Account

from chain.balance import stage_update
from chain.broker import ChainEndpoint
from chain.recipient import Recipient, parse_secret
from chain.pricing import MAX_WIN_PROB
from chain.recipient import new_ticket_params
from chain.redeemer import due
from chain.sender import TicketSender
from chain.redeemer import Answer, Entry, Winner
from tasks.settings import Env
from workers.redeemer_store import OperatorStore
from workers.settings import OperatorSettings
from devstack.stack import wait_for
from tasks.catalog import ModelEntry
from app.store.ledger import job_fee
from workers.payments import OperatorPayments

SECRET = b"unit test operator secret 32 b!!"


def test_credit_keeps_ev_within_one_ticket_of_the_fees():
    credit, ev_sent, fees = Fraction(0), Fraction(0), Fraction(0)
    ev = Fraction(10**17)
    for fee in [Fraction(25 * 10**16)] * 7 + [Fraction(1, 3), Fraction(0), Fraction(10**18)]:
        count, credit = stage_update(fee, credit, ev)
        ev_sent += count * ev
        fees += fee
        assert 0 <= ev_sent - fees == credit < ev


def test_credit_covers_a_small_fee_without_tickets_and_a_negative_one_is_made_up():
    assert stage_update(5, 10, 7) == (0, 5)
    assert stage_update(15, 10, 7) == (1, 2)
    # Voided tickets took 8 back: the next tickets cover them before any fee.
    assert stage_update(0, -8, 7) == (2, 6)
    assert stage_update(1, -1, 7) == (1, 5)


def test_job_fee_is_units_times_price_per_pixel():
    entry = ModelEntry(pipeline="text-to-image", model_id="m", price_per_unit=3, pixels_per_unit=4)
    assert job_fee(entry, 128 * 128) == Fraction(3 * 128 * 128, 4)
    assert job_fee(None, 100) == 0


def winner(nonce: int, *, expiration_block=100, creation_round=5, received_at=0.0) -> Winner:
    params = new_ticket_params(SECRET, recipient=Account.create().address, sender=Account.create().address,
                               face_value=10, win_prob=MAX_WIN_PROB, expiration_block=expiration_block,
                               creation_round=creation_round, creation_round_block_hash=b"\x01" * 32, seed=nonce)
    return Winner(params.ticket(Account.create().address, nonce), b"\x00" * 65, 1, expiration_block,
                  "job", received_at)


def test_redeem_policy():
    now = 1000.0
    fresh = dict(current_block=50, current_round=5, validity_rounds=2, batch_size=3, max_wait=60, now=now)
    one = [winner(1, received_at=now)]
    assert not due(one, **fresh)
    assert due(one, **{**fresh, "current_block": 100})  # params expired: nothing more to wait for
    assert due(one, **{**fresh, "current_round": 6})  # the creation round's last redeemable round
    assert due(one, **{**fresh, "now": now + 60})  # waited long enough
    assert due([winner(n, received_at=now) for n in range(3)], **fresh)  # a full batch


def entry(w: Winner, rejection=None, durable=True, winning=True) -> Entry:
    answer = Answer(w.ticket.sender_nonce, rejection, winning and rejection is None)
    return Entry(answer, True, durable, w if answer.winning else None)


def test_store_keeps_answers_and_winners_together_and_answers_copies_alike(tmp_path):
    store = OperatorStore(tmp_path / "op.sqlite3")
    w, expired, broke = winner(1), winner(2), winner(3)
    sender, rand_hash = w.ticket.sender, w.ticket.recipient_rand_hash
    first = store.record(sender, rand_hash, 100, [entry(w), entry(expired, "expired"),
                                                  entry(broke, "no_funds", durable=False)])
    assert [(a.rejection, a.winning, a.repeat) for a in first] == [
        (None, True, False), ("expired", False, False), ("no_funds", False, False)]
    assert [p.hash for p in store.pending()] == [w.hash] and store.answers() == 2
    # A copy gets the first answer; a refusal that was not the sender's fault kept nothing.
    again = store.record(sender, rand_hash, 100, [entry(w, "expired"), entry(expired),
                                                  entry(broke)])
    assert [(a.rejection, a.winning, a.repeat) for a in again] == [
        (None, True, True), ("expired", False, True), (None, True, False)]
    assert {p.hash for p in store.pending()} == {w.hash, broke.hash}
    assert store.pending_face_value(w.ticket.sender) == 10

    store.prune(current_block=1000, now=time.time())  # expired, but kept for a while yet
    assert store.answers() == 3
    store.prune(current_block=1000, now=time.time() + 31 * 24 * 3600)
    assert store.answers() == 0


def test_store_undoes_everything_when_killed_between_answers_and_winners(tmp_path):
    def crash():
        raise SystemExit("killed")  # as a SIGKILL there would: the transaction never commits

    store = OperatorStore(tmp_path / "op.sqlite3", between=crash)
    w = winner(1)
    with pytest.raises(SystemExit):
        store.record(w.ticket.sender, w.ticket.recipient_rand_hash, 100, [entry(w)])
    restarted = OperatorStore(tmp_path / "op.sqlite3")
    assert restarted.answers() == 0 and restarted.pending() == []
    [answer] = restarted.record(w.ticket.sender, w.ticket.recipient_rand_hash, 100, [entry(w)])
    assert not answer.repeat and [p.hash for p in restarted.pending()] == [w.hash]


def test_store_winners_submitted_confirmed_or_undone_and_never_given_up(tmp_path):
    store = OperatorStore(tmp_path / "op.sqlite3")
    w, lost = winner(1), winner(2)
    store.record(w.ticket.sender, w.ticket.recipient_rand_hash, 100, [entry(w), entry(lost)])
    assert not store.revealed(w.ticket.recipient_rand_hash)
    store.mark_submitted(w.hash, "0x" + "ab" * 32)
    assert store.revealed(w.ticket.recipient_rand_hash)  # its rand is public once sent
    assert [s.hash for s in store.submitted()] == [w.hash]
    store.unsubmit(w.hash)  # a reorg undid it
    assert {p.hash for p in store.pending()} == {w.hash, lost.hash}
    store.mark_submitted(w.hash, "0x" + "cd" * 32)
    store.mark_redeemed(w.hash)
    for _ in range(50):
        store.note_error(lost.hash, "skipped by batchRedeemWinningTickets")
    assert store.summary()["winners"] == {"pending": 1, "submitted": 0, "redeemed": 1, "failed": 0}
    store.mark_failed(lost.hash, "ticket is expired")
    assert store.summary()["winners"]["failed"] == 1

    store.count_rejection("expired")
    store.count_rejection("expired", 2)
    assert store.rejections() == {"expired": 3}
    # Another process opening the same file sees the same records.
    assert OperatorStore(tmp_path / "op.sqlite3").rejections() == {"expired": 3}


def test_settings_from_env(tmp_path):
    key_file = tmp_path / "key"
    key = Account.create().key.hex()
    key_file.write_text(key + "\n")
    env = Env({"OPERATOR_PRIVATE_KEY_FILE": str(key_file), "OPERATOR_SECRET": "ab" * 16})
    assert env.secret("OPERATOR_PRIVATE_KEY") == key
    operator = OperatorSettings.from_env(env)
    assert operator.address == Account.from_key(key).address
    assert operator.recipient.secret == b"\xab" * 16
    # no secret: unpaid
    assert OperatorSettings.from_env(Env({"OPERATOR_ADDRESS": operator.address})) is None
    assert ChainEndpoint.configured("http://x", "") is None
    assert parse_secret("a long enough text secret") == b"a long enough text secret"
    with pytest.raises(ValueError):
        parse_secret("short")


def test_a_chain_that_is_down_costs_the_job_only_its_params(caplog):
    operator = Recipient(Account.create().address, SECRET, 10**12, 1000)
    chain = ChainEndpoint("http://127.0.0.1:1", Account.create().address)
    payments = OperatorPayments(operator, chain)
    sender = TicketSender(Account.create().key).address
    started = time.monotonic()
    assert payments.params_for(sender) is None
    assert payments.params_for(sender) is None  # within the back-off: the chain is not asked
    assert time.monotonic() - started < 5
    assert "no ticket params" in caplog.text
    assert payments.params_for(None) is None


class ChainReads:
    """The chain as a worker's payments see it, counting reads; each read may be held
    until the test lets it go, to see what jobs get meanwhile."""

    def __init__(self):
        self.blocks = 0
        self.go = threading.Event()
        self.go.set()
        self.done = threading.Event()

    def ticket_round(self):
        self.go.wait(10)
        return 1, b"\x01" * 32

    def block_number(self):
        self.blocks += 1
        self.done.set()
        return 100 + self.blocks

    def gas_price(self):
        return 10**9


def test_a_stale_chain_view_serves_jobs_while_a_background_read_replaces_it():
    from workers import payments as module

    now = [1000.0]
    operator = Recipient(Account.create().address, SECRET, 10**12, 1000)
    chain = ChainEndpoint("http://127.0.0.1:1", Account.create().address)
    payments = OperatorPayments(operator, chain, clock=lambda: now[0])
    reads = ChainReads()
    payments._broker = reads  # the chain itself is tested in test_payments_flow
    payments._recipient = operator
    sender = TicketSender(Account.create().key).address

    first = payments.params_for(sender)  # nothing read yet: the job waits for the chain
    assert reads.blocks == 1 and first["expiration_block"] > 101
    now[0] += module.CHAIN_CACHE_SECONDS / 2
    payments.params_for(sender)
    assert reads.blocks == 1  # fresh: reused

    now[0] += module.CHAIN_CACHE_SECONDS  # stale but usable: served at once, read behind
    reads.go.clear()
    reads.done.clear()
    served = payments.params_for(sender)
    assert served is not None and reads.blocks == 1
    assert payments.params_for(sender) is not None  # one background read at a time
    reads.go.set()
    assert reads.done.wait(10)
    wait_for(lambda: payments.view.last.value.block == 102, timeout=10, what="the background read")

    now[0] += module.CHAIN_STALE_SECONDS + 1  # too old to trust: read before the job
    payments.params_for(sender)
    assert reads.blocks == 3 and payments.view.last.value.block == 103
