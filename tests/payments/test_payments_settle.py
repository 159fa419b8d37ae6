"""The settler in-process, against the stack's PostgreSQL and chain: a success owes its fee
in the transaction that records it; debts are paid with tickets covering the fee less the
operator's credit, once; params outside the gateway's bounds are refused, counted, and fresh
ones asked for; unanswered tickets are sent again; tickets the operator lastingly refused
are voided only once the chain can no longer redeem them, and their EV issued again."""

import dataclasses
import uuid
from datetime import timedelta
from fractions import Fraction
from types import SimpleNamespace

import pytest
from eth_account import Account
from sqlalchemy import select

from app.settings import Settings, gateway_key
from app.settle import Policy, Receipts, Settler
from app.settler import policy
from app.store import ledger
from app.store.db import transaction
from app.store.jobs import apply_event, new_job
from app.store.tables import ApiKey
from chain.bounds import read_sender_view
from chain.broker import TicketBroker
from chain.payment import Payment
from chain.recipient import Recipient
from chain.validator import TicketValidator
from devstack import invariants
from devstack.chain import DEV_TICKET_EV
from devstack.devchain import DEV_ROUND_LENGTH
from devstack.stack import wait_for
from tasks import names
from tasks.catalog import Catalog
from tasks.messages import WorkerEvent
from tasks.settings import Env

SECRET = b"settle test operator secret 32b!"
ECHO_FEE = 25 * 10**16  # one echo job (tests/support.py): 2.5 dev tickets


class SentTasks:
    """Stands in for the Celery app: keeps what would have been sent."""

    def __init__(self):
        self.sent = []

    def send_task(self, name, args, queue):
        self.sent.append((name, args, queue))

    def payments(self):
        return [Payment.from_dict(args[1]) for name, args, _ in self.sent if name == names.PAYMENT]

    def asks(self):
        return [(args[0], queue) for name, args, queue in self.sent if name == names.PARAMS_REQUEST]


@pytest.fixture
def chain(stack):
    return TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"])


@pytest.fixture
def gateway(stack):
    return Account.from_key(gateway_key(Env(stack.env))).address


@pytest.fixture
def operator(stack, chain, gateway):
    """A fresh registered operator (so its credit starts at zero) and a maker of its ticket
    params, valid for a round as a worker's are."""
    recipient = Recipient(Account.create().address, SECRET, DEV_TICKET_EV, DEV_ROUND_LENGTH)
    made = stack.create_operator(f"settle-{recipient.address}", recipient.address)

    def params(**changes) -> dict:
        round_, block_hash = chain.ticket_round()
        made = recipient.ticket_params(gateway, gas_price=chain.gas_price(), current_block=chain.block_number(),
                                       creation_round=round_, creation_round_block_hash=block_hash).to_dict()
        return {**made, **changes}

    return SimpleNamespace(address=recipient.address, id=int(made["OPERATOR_ID"]), params=params)


@pytest.fixture
def view(chain, gateway):
    """The settler's view of the chain, which a test may move on."""
    current = [read_sender_view(chain, gateway)]
    return current


@pytest.fixture
def settler(stack, sessions, view):
    settings = Settings.from_env(Env(stack.env))
    cursor = ledger.watcher_cursor(settings.chain.broker_address, settings.gateway_address)
    s = Settler(sessions, gateway_key(Env(stack.env)), SentTasks(), lambda: view[0], cursor,
                Policy(policy(settings).bounds, retry_base_seconds=0, retry_max_seconds=0))
    s.cursor = cursor
    return s


@pytest.fixture
def owe(stack, sessions):
    """A succeeded echo job that owes its fee to `payee`, recorded as the recorder does."""
    with transaction(sessions) as session:
        key = ApiKey(name="settle-test", key_hash=Account.create().key.hex()[2:66], prefix="settle", role="user")
        session.add(key)
        session.flush()
        key_id = key.id
    catalog = Catalog.load(stack.env["MODELS_FILE"])
    media = invariants.media_of(stack)

    def make(operator, params: dict | None = None, status: str = "succeeded", payee: str | None = "") -> str:
        """`operator`: the registered operator whose worker ran it; `payee`: what its
        worker says (by default the operator's address; None: an unpaid worker)."""
        with transaction(sessions) as session:
            job = new_job(str(uuid.uuid4()), key_id, "echo", "echo", {"prompt": "hi"}, 1,
                          "echo:echo")
            session.add(job)
        said = operator.address if payee == "" else payee
        event = WorkerEvent(job_id=job.id, status=status, at=0, worker="pay-w1", payee=said, payment=params,
                            error=None if status == "succeeded" else "no")
        with transaction(sessions) as session:
            apply_event(session, event, media, operator.id, catalog)
        return job.id

    return make


def debt(sessions, job_id):
    with sessions() as session:
        return session.get(ledger.Debt, job_id)


def tickets(sessions, job_id, live=True):
    with sessions() as session:
        rows = session.scalars(select(ledger.TicketRecord).where(ledger.TicketRecord.job_id == job_id)
                               .order_by(ledger.TicketRecord.id)).all()
    return [t for t in rows if not live or t.status != ledger.VOID]


def answer(sessions, job_id, operator, rejection=None):
    """The operator's receipt on a job's live, unanswered tickets, as the recorder commits
    it once it has checked who signed it."""
    results = [{"sender_nonce": t.sender_nonce, "rejection": rejection, "winning": rejection is None}
               for t in tickets(sessions, job_id) if t.status in ledger.UNANSWERED]
    return Receipts(sessions).receipt(job_id, results, operator.address)


def test_a_success_owes_its_fee_in_the_transaction_that_records_it(sessions, owe, operator):
    owed = owe(operator)  # no params came: still owed
    assert (debt(sessions, owed).fee, debt(sessions, owed).status) == (ECHO_FEE, ledger.OWED)
    assert debt(sessions, owe(operator, payee=None)) is None  # an unpaid worker
    assert debt(sessions, owe(operator, status="failed")) is None
    # A worker that names another payee is not believed: the registered operator is owed.
    assert debt(sessions, owe(operator, payee=Account.create().address)).payee == operator.address


def test_debts_are_paid_once_with_tickets_covering_fees_less_credit(sessions, owe, operator, settler):
    first, second = owe(operator, operator.params()), owe(operator, operator.params())
    assert settler.settle_next(first) == "issued"
    assert settler.settle_next(second) == "issued"
    payments = settler.celery.payments()
    # 2.5 tickets' worth each: 3 tickets, then the credit left makes 2 (or 3 again: an
    # always-winning ticket carries a hair less than its face value).
    assert len(payments[0].tickets) == 3 and len(payments[1].tickets) in (2, 3)
    validator = TicketValidator(operator.address, SECRET)
    for payment in payments:
        assert all(v.ok for v in validator.validate_payment(payment, current_block=0))
    assert {queue for _, _, queue in settler.celery.sent} == {names.payments_queue(operator.address)}
    assert all(t.status == ledger.SENT for t in tickets(sessions, first))

    # Unanswered: sent again, the same tickets; never new ones.
    assert settler.settle_next(first) == "resent"
    assert settler.celery.payments()[-1] == payments[0]
    # Another operator may not speak of this one's tickets.
    assert Receipts(sessions).receipt(first, [{"sender_nonce": 1, "rejection": "expired"}],
                                      Account.create().address) == 0
    answer(sessions, first, operator)
    answer(sessions, second, operator)
    assert debt(sessions, first).status == debt(sessions, second).status == ledger.PAID
    assert settler.settle_next(first) is None  # paid: nothing more, ever
    ev = sum(Fraction(int(t.face_value) * int(t.win_prob), 2**256)
             for t in tickets(sessions, first) + tickets(sessions, second))
    assert 0 <= ev - 2 * ECHO_FEE < DEV_TICKET_EV


def test_params_out_of_bounds_are_refused_counted_and_fresh_ones_asked(
        sessions, owe, operator, settler, gateway):
    # A face value of the gateway's whole deposit and reserve, on a ticket that always wins.
    greedy = operator.params(face_value=str(10**21), win_prob=str(2**256 - 1))
    job_id = owe(operator, greedy)
    assert settler.settle_next(job_id) == "asked_params"
    assert debt(sessions, job_id).refusal == "face_value_cap" and tickets(sessions, job_id) == []
    assert settler.celery.asks() == [(job_id, names.payments_queue(operator.address))]
    with sessions() as session:
        assert session.get(ledger.Refusal, (operator.address, "face_value_cap")).count == 1

    # Only the operator owed may answer; its redeemer does.
    assert not Receipts(sessions).fresh_params(job_id, operator.params(), Account.create().address)
    assert Receipts(sessions).fresh_params(job_id, operator.params(), operator.address)
    assert settler.settle_next(job_id) == "issued"
    assert debt(sessions, job_id).status == ledger.ISSUED and debt(sessions, job_id).refusal is None

    no_params = owe(operator)
    assert settler.settle_next(no_params) == "asked_params"


def test_the_settler_waits_without_a_view_of_the_chain(sessions, owe, operator, settler, view):
    job_id = owe(operator, operator.params())
    view[0] = None
    assert settler.settle_next(job_id) == "no_view"
    assert debt(sessions, job_id).status == ledger.OWED and settler.celery.sent == []


def test_refused_tickets_are_voided_only_past_redeeming_then_reissued(
        sessions, owe, operator, settler, view, chain, gateway):
    job_id = owe(operator, operator.params())
    settler.settle_next(job_id)
    answer(sessions, job_id, operator, "no_funds")  # not the sender's fault: sent again, never voided
    assert [t.status for t in tickets(sessions, job_id)] == [ledger.SENT] * 3
    assert settler.settle_next(job_id) == "resent"
    answer(sessions, job_id, operator, "expired")  # lasting: the redeemer never takes them
    assert settler.settle_next(job_id) == "waiting"  # the chain could still redeem them

    issued = tickets(sessions, job_id)
    with sessions() as session:
        created = ledger.creation_rounds(session, [issued[0].recipient_rand_hash])[issued[0].recipient_rand_hash]
        credit_before = session.get(ledger.Credit, (settler.address, operator.address)).credit
    past = view[0].redeemable_until(created)
    view[0] = dataclasses.replace(view[0], round=view[0].round + 3, block=past + 1,
                                  round_start_block=view[0].round_start_block + 3 * view[0].round_length)
    with transaction(sessions) as session:
        watched = ledger.cursor(session, settler.cursor)
        ledger.set_cursor(session, settler.cursor, past - 1)  # the watcher has not read that far
    try:
        assert settler.settle_next(job_id) == "waiting"
        with transaction(sessions) as session:
            ledger.set_cursor(session, settler.cursor, past)
        assert settler.settle_next(job_id) == "asked_params"  # voided: fresh params for their EV
    finally:  # the watcher's place as it was
        with transaction(sessions) as session:
            if watched is None:
                session.delete(session.get(ledger.ChainCursor, settler.cursor))
            else:
                ledger.set_cursor(session, settler.cursor, watched)
    with sessions() as session:
        credit = session.get(ledger.Credit, (settler.address, operator.address)).credit
    assert credit == credit_before - sum(t.ev for t in issued)
    assert [t.status for t in tickets(sessions, job_id, live=False)] == [ledger.VOID] * 3

    view[0] = read_sender_view(chain, gateway)  # back to the chain as it is
    Receipts(sessions).fresh_params(job_id, operator.params(), operator.address)
    assert settler.settle_next(job_id) == "issued"
    answer(sessions, job_id, operator)
    assert debt(sessions, job_id).status == ledger.PAID
    ev = sum(t.ev for t in tickets(sessions, job_id))
    assert 0 <= ev - ECHO_FEE < DEV_TICKET_EV


def test_refusals_and_debts_owed_too_long_show_in_admin_payments_and_metrics(
        app, sessions, owe, operator, settler, admin_key):
    refused = owe(operator, operator.params(face_value=str(10**21)))
    settler.settle_next(refused)
    late = owe(operator)  # no params, and the operator never answers
    with transaction(sessions) as session:
        session.get(ledger.Debt, late).owed_at -= timedelta(hours=2)

    client = app.test_client()
    admin = {"Authorization": f"Bearer {admin_key}"}
    body = client.get("/admin/payments", headers=admin).get_json()
    [mine] = [o for o in body["operators"] if o["recipient"] == operator.address]
    assert mine["refusals"] == {"face_value_cap": 1}
    assert mine["owed_unpaid"] == {"jobs": 1, "wei": str(ECHO_FEE)} and mine["jobs_paid"] == 0
    assert body["owed_unpaid"]["jobs"] >= 1 and int(body["owed_unpaid"]["wei"]) >= ECHO_FEE

    def owed_unpaid_gauge() -> float:
        metrics = client.get("/metrics").get_data(as_text=True)
        [gauge] = [line for line in metrics.splitlines()
                   if line.startswith("genai_payments_owed_unpaid_wei ")]
        return float(gauge.split()[1])
    # /metrics answers from a copy refreshed in the background (METRICS_REFRESH_SECONDS).
    wait_for(lambda: owed_unpaid_gauge() >= ECHO_FEE, timeout=30, what="the debt in the gauge")


def owe_small(sessions, owe, operator, fee: int) -> str:
    """A debt like `owe`'s, for a job of this fee (an echo job costs a ticket and more)."""
    job_id = owe(operator, operator.params())
    with transaction(sessions) as session:
        session.get(ledger.Debt, job_id).fee = fee
    return job_id


def test_small_debts_wait_with_their_params_and_one_ticket_pays_them_together(
        sessions, owe, operator, settler):
    settler.policy = dataclasses.replace(settler.policy, retry_base_seconds=60, retry_max_seconds=600)
    multiple = settler.policy.bounds.max_ev_fee_multiple
    quarter = int(DEV_TICKET_EV / multiple / 4)  # four of these are worth one dev ticket
    waiting = [owe_small(sessions, owe, operator, quarter) for _ in range(3)]
    for job_id in waiting:
        # Three quarters of a ticket owed: not refused, nothing asked, the params kept.
        assert settler.settle_next(job_id) == "deferred"
        assert debt(sessions, job_id).params is not None and debt(sessions, job_id).refusal is None
        assert debt(sessions, job_id).next_attempt_at > ledger.now()  # backing off
    assert settler.celery.sent == []
    with sessions() as session:
        assert session.scalars(select(ledger.Refusal).where(ledger.Refusal.payee == operator.address)).all() == []

    last = owe_small(sessions, owe, operator, quarter)
    assert settler.settle_next(last) == "issued"
    [payment] = settler.celery.payments()
    assert len(payment.tickets) == 1  # one ticket for the four jobs
    for job_id in waiting:  # woken: the credit the ticket left pays them now
        assert debt(sessions, job_id).next_attempt_at <= ledger.now()
        assert settler.settle_next(job_id) == "paid"
    answer(sessions, last, operator)
    everything = waiting + [last]
    assert {debt(sessions, job_id).status for job_id in everything} == {ledger.PAID}
    with sessions() as session:
        credit = session.get(ledger.Credit, (settler.address, operator.address)).credit
    ev = sum(t.ev for t in tickets(sessions, last))
    # Paid once: the credit is the ticket's EV less the four fees (to the wei: amounts are
    # rounded down at their 18th decimal).
    assert credit > 0 and abs(credit - (ev - 4 * quarter)) < 1


def test_an_operator_answering_with_refused_params_is_asked_less_and_less_often(
        sessions, owe, operator, settler):
    settler.policy = dataclasses.replace(settler.policy, retry_base_seconds=10, retry_max_seconds=600)
    greedy = {"face_value": str(10**21), "win_prob": str(2**256 - 1)}
    job_id = owe(operator, operator.params(**greedy))
    delays = []
    for _ in range(3):
        before = ledger.now()
        assert settler.settle_next(job_id) == "asked_params"
        due = debt(sessions, job_id).next_attempt_at
        delays.append((due - before).total_seconds())
        # The operator answers at once, with params the gateway refuses again: they are
        # looked at when the backoff is over, not at once.
        assert Receipts(sessions).fresh_params(job_id, operator.params(**greedy), operator.address)
        assert debt(sessions, job_id).next_attempt_at == due
    assert [round(d / 10) for d in delays] == [1, 2, 4]
    with sessions() as session:
        assert session.get(ledger.Refusal, (operator.address, "face_value_cap")).count == 3

    # Honest params at last: taken at the debt's next attempt.
    assert Receipts(sessions).fresh_params(job_id, operator.params(), operator.address)
    assert settler.settle_next(job_id) == "issued"
