"""The settle task in-process, against the stack's PostgreSQL and chain: only a succeeded
job, recorded from the worker that asks, is paid; enough tickets cover its fee less the
operator's credit; settling twice issues and sends nothing new."""

import uuid
from decimal import Decimal
from fractions import Fraction

import pytest
from eth_account import Account

from app.store.db import transaction
from app.store.jobs import new_job
from app.store.tables import ApiKey, Job
from app.store import ledger
from chain.balance import stage_update
from chain.broker import TicketBroker
from app.settings import gateway_key
from tasks.settings import Env
from chain.payment import Payment
from chain.recipient import Recipient, TicketParams
from chain.validator import TicketValidator
from devstack.chain import DEV_TICKET_EV
from tasks import names
from tasks.catalog import Catalog
from app.settle import Settler

SECRET = b"settle test operator secret 32b!"
ECHO_FEE = 25 * 10**16  # one echo job (tests/support.py)


class SentTasks:
    """Stands in for the Celery app: keeps what would have been sent."""

    def __init__(self):
        self.sent = []

    def send_task(self, name, args, queue):
        self.sent.append((name, args, queue))


@pytest.fixture
def operator(stack):
    """A fresh operator (so its credit starts at zero) and a maker of its ticket params."""
    address = Account.create().address
    broker = TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"])
    recipient = Recipient(address, SECRET, DEV_TICKET_EV)

    def params(sender: str) -> dict:
        round_, block_hash = broker.ticket_round()
        return recipient.ticket_params(sender, gas_price=broker.gas_price(), current_block=broker.block_number(),
                                       creation_round=round_, creation_round_block_hash=block_hash).to_dict()

    return address, params


@pytest.fixture
def make_job(stack, sessions):
    with transaction(sessions) as session:
        key = ApiKey(name="settle-test", key_hash=Account.create().key.hex()[2:66], prefix="settle", role="user")
        session.add(key)
        session.flush()
        key_id = key.id

    def make(status: str, worker: str = "pay-w1") -> str:
        with transaction(sessions) as session:
            job = new_job(str(uuid.uuid4()), key_id, "echo", "echo", {"prompt": "hi"}, 1,
                          "echo:echo")
            job.status, job.worker = status, worker
            session.add(job)
        return job.id

    return make


def test_settle_pays_only_succeeded_jobs_once(stack, sessions, operator, make_job):
    address, params_for = operator
    sent = SentTasks()
    key = gateway_key(Env(stack.env))
    settler = Settler(sessions, Catalog.load(stack.env["MODELS_FILE"]), key, sent)
    gateway = Account.from_key(key).address

    for status in ("failed", "canceled", "aborted", "started"):
        assert settler.settle(make_job(status), "pay-w1", params_for(gateway)) == "ignored"
    assert settler.settle(make_job("succeeded", worker="someone-else"), "pay-w1", params_for(gateway)) == "ignored"
    assert settler.settle(make_job("succeeded"), "pay-w1", {"face_value": "1"}) == "unpaid"  # params garbled
    assert sent.sent == []

    first, second = make_job("succeeded"), make_job("succeeded")
    first_params, second_params = params_for(gateway), params_for(gateway)
    assert settler.settle(first, "pay-w1", first_params) == "sent"
    assert settler.settle(first, "pay-w1", first_params) == "settled"  # a re-run issues nothing
    assert settler.settle(second, "pay-w1", second_params) == "sent"

    # Each job costs 2.5 tickets: 3 tickets, then the credit left makes fewer enough (2, or
    # 3 again since an always-winning ticket carries a hair less than its face value).
    first_count, credit = stage_update(ECHO_FEE, 0, TicketParams.from_dict(first_params).ev)
    second_count, _ = stage_update(ECHO_FEE, credit, TicketParams.from_dict(second_params).ev)
    assert [len(args[1]["tickets"]) for _, args, _ in sent.sent] == [first_count, second_count]
    assert first_count == 3
    assert {(name, queue) for name, _, queue in sent.sent} == {(names.PAYMENT, names.payments_queue(address))}
    validator = TicketValidator(address, SECRET)
    for _, (job_id, raw), _ in sent.sent:
        verdicts = validator.validate_payment(Payment.from_dict(raw), current_block=0)
        assert all(v.ok for v in verdicts), [v.rejection for v in verdicts]

    with sessions() as session:
        rows = session.query(ledger.TicketRecord).filter(ledger.TicketRecord.recipient == address).all()
        settlements = session.query(ledger.Settlement).filter(ledger.Settlement.recipient == address).all()
        credit = session.get(ledger.Credit, (gateway, address)).credit
        jobs_paid = {s.job_id for s in settlements}
    assert jobs_paid == {first, second} and len(rows) == first_count + second_count
    assert all(t.status == ledger.SENT for t in rows)
    ev_sent = sum(Fraction(int(t.face_value) * int(t.win_prob), 2**256) for t in rows)
    assert 0 <= ev_sent - 2 * ECHO_FEE < DEV_TICKET_EV
    # Kept to 1e-18 wei, rounded down at each settlement.
    assert 0 <= ledger.to_amount(ev_sent - 2 * ECHO_FEE) - credit <= Decimal("2e-18")


def test_receipts_record_the_operators_verdicts(stack, sessions, operator, make_job):
    address, params_for = operator
    sent = SentTasks()
    key = gateway_key(Env(stack.env))
    settler = Settler(sessions, Catalog.load(stack.env["MODELS_FILE"]), key, sent)
    job_id = make_job("succeeded")
    settler.settle(job_id, "pay-w1", params_for(Account.from_key(key).address))
    nonces = [t["sender_nonce"] for t in sent.sent[0][1][1]["tickets"]]
    settler.receipt(job_id, [{"sender_nonce": nonces[0], "rejection": None, "winning": True},
                             {"sender_nonce": nonces[1], "rejection": "replayed", "winning": False}],
                    address)
    # A second delivery's verdict ('replayed') does not undo the first.
    settler.receipt(job_id, [{"sender_nonce": nonces[0], "rejection": "replayed", "winning": False}],
                    address)
    # Another operator may not speak of this one's tickets.
    settler.receipt(job_id, [{"sender_nonce": nonces[2], "rejection": "expired", "winning": False}],
                    Account.create().address)
    with sessions() as session:
        rows = {t.sender_nonce: t for t in session.query(ledger.TicketRecord).filter_by(job_id=job_id)}
    assert (rows[nonces[0]].status, rows[nonces[0]].winning) == (ledger.ACCEPTED, True)
    assert (rows[nonces[1]].status, rows[nonces[1]].rejection) == (ledger.REJECTED, "replayed")
    assert rows[nonces[2]].status == ledger.SENT
    with sessions() as session:
        assert session.get(Job, job_id).status == "succeeded"
