"""Payments end to end, with real processes on anvil: echo jobs on a paid worker, the
recorder's settle task issuing tickets, the operator's redeemer keeping the winners and
redeeming them on chain, and the watcher reconciling the gateway's ledger with the chain."""

from fractions import Fraction

from sqlalchemy import select

from app.store.tables import Job
from app.store import ledger
from chain.broker import TicketBroker
from chain.codec import to_hex
from chain.ticket import ticket_hash
from devstack.chain import DEV_TICKET_EV
from devstack.stack import wait_for
from support import mine_until_redeemed, submit_echo, ticket_rows, wait_status
from tasks import names
from tasks.celery_app import make_celery

ECHO_FEE = 25 * 10**16  # tests/support.py
JOBS = 4


def test_paid_jobs_are_redeemed_on_chain_and_the_ledger_matches(stack, http, pay_gateway, auth, admin_auth,
                                                                 sessions, operator):
    address, store = operator.address, operator.store
    rpc = stack.env["CHAIN_RPC_URL"]
    broker = TicketBroker(rpc, stack.env["TICKET_BROKER_ADDRESS"])
    first_block = broker.block_number()
    balance_before = broker.w3.eth.get_balance(address)

    # Jobs that take a moment, as real ones do: the gateway's admission learns run times
    # from every job, and instant ones would teach it that echo jobs never wait.
    job_ids = [submit_echo(http, pay_gateway, auth, steps=1, step_seconds=0.5) for _ in range(JOBS)]
    failed = submit_echo(http, pay_gateway, auth, fail="error")
    for job_id in job_ids:
        wait_status(http, pay_gateway, auth, job_id, "succeeded", timeout=60)
    wait_status(http, pay_gateway, auth, failed, "failed", timeout=60)

    # Settled, sent, and accepted by the operator as winners (its receipts come back).
    wait_for(lambda: {j for j in job_ids} == {t.job_id for t in ticket_rows(sessions, job_ids)}
             and all(t.winning for t in ticket_rows(sessions, job_ids)), timeout=60, what="tickets accepted")
    tickets = ticket_rows(sessions, job_ids)
    ev_sent = sum(Fraction(int(t.face_value) * int(t.win_prob), 2**256) for t in tickets)
    assert 0 <= ev_sent - JOBS * ECHO_FEE < DEV_TICKET_EV
    assert ticket_rows(sessions, [failed]) == []

    mine_until_redeemed(rpc, sessions, job_ids)

    events = broker.redemption_events(first_block, recipient=address)
    assert sorted(to_hex(ticket_hash(e.ticket)) for e in events) == sorted(t.ticket_hash for t in tickets)
    paid = sum(e.ticket.face_value for e in events)
    assert broker.w3.eth.get_balance(address) - balance_before == paid
    assert len({e.tx_hash for e in events}) < len(events)  # batched
    assert store.summary()["winners"] == {"pending": 0, "redeemed": len(tickets), "failed": 0}
    assert store.rejections() == {}

    # The ledger holds exactly the chain's redemptions of the gateway's tickets.
    gateway = tickets[0].sender
    on_chain = {(to_hex(ticket_hash(e.ticket)), to_hex(e.tx_hash)) for e in broker.redemption_events(0, sender=gateway)}
    with sessions() as session:
        recorded = {(r.ticket_hash, r.tx_hash) for r in session.scalars(select(ledger.RedemptionRecord))}
        funding = {d.kind for d in session.scalars(select(ledger.DepositRecord).where(ledger.DepositRecord.sender == gateway))}
    assert recorded == on_chain
    assert {t.redemption_tx for t in ticket_rows(sessions, job_ids)} == {to_hex(e.tx_hash) for e in events}
    assert {"deposit", "reserve"} <= funding

    summary = http.get(f"{pay_gateway}/admin/payments", headers=admin_auth).json()
    [mine_] = [o for o in summary["operators"] if o["recipient"] == address]
    assert mine_["jobs_paid"] == JOBS and mine_["ev_owed"] == str(JOBS * ECHO_FEE)
    assert mine_["tickets_sent"] == mine_["winners"] == mine_["redeemed"] == len(tickets)
    assert mine_["redeemed_wei"] == str(paid) and mine_["tickets_rejected"] == 0
    payouts = http.get(f"{pay_gateway}/admin/payouts?limit=100", headers=admin_auth).json()["payouts"]
    ours = [p for p in payouts if p["recipient"] == address]
    assert [p["id"] for p in payouts] == sorted((p["id"] for p in payouts), reverse=True)
    assert {p["tx_hash"] for p in ours} == {to_hex(e.tx_hash) for e in events}
    assert {p["job_id"] for p in ours} == set(job_ids)
    assert http.get(f"{pay_gateway}/admin/payouts", headers=auth).status_code == 403

    # The settle task run again for a paid job issues and sends nothing.
    with sessions() as session:
        params = session.get(ledger.Settlement, job_ids[0]).params
        worker = session.get(Job, job_ids[0]).worker
    celery = make_celery(stack.env["REDIS_URL"])
    result = celery.send_task(names.SETTLE, args=[job_ids[0], worker, params], queue=names.SETTLE_QUEUE)
    assert result.get(timeout=30) == "settled"
    assert len(ticket_rows(sessions, job_ids)) == len(tickets)
