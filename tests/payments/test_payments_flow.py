"""Payments end to end, with real processes on anvil: echo jobs on a paid worker, the
recorder's settle task issuing tickets, the operator's redeemer keeping the winners and
redeeming them on chain, and the watcher reconciling the gateway's ledger with the chain."""

import time
from fractions import Fraction

import pytest
from eth_account import Account
from sqlalchemy import select

from chain import ledger
from chain.broker import TicketBroker
from chain.codec import to_hex
from chain.devchain import DEV_PRIVATE_KEYS, mine
from chain.store import OperatorStore
from chain.ticket import ticket_hash
from devstack.chain import DEV_TICKET_EV
from devstack.stack import wait_for
from support import submit_echo, wait_status
from tasks import names
from tasks.celery_app import make_celery

ECHO_FEE = 25 * 10**16  # tests/support.py
GAS_KEY = DEV_PRIVATE_KEYS[3]  # pays the redemptions' gas, so the operator's balance moves only by payouts
JOBS = 4


@pytest.fixture(scope="module")
def operator(stack, recorder, tmp_path_factory):
    """A fresh operator address (its balance starts at zero) with its own echo worker,
    redeemer and the gateway's watcher; all stopped afterwards, so no other test's echo
    jobs land on a paid worker."""
    address = Account.create().address
    env = {"OPERATOR_ADDRESS": address, "OPERATOR_SECRET": "flow-test-operator-secret-0123456"}
    store_dir = tmp_path_factory.mktemp("redeemer")
    procs = [
        stack.start_worker("pay-echo-1", "--models", "echo", env=env),
        stack.spawn("pay-redeemer", ["-m", "chain.redeemer"], {
            **env, "OPERATOR_PRIVATE_KEY": GAS_KEY, "REDEEMER_DIR": str(store_dir),
            "REDEEM_INTERVAL_SECONDS": "0.2", "REDEEM_BATCH_SIZE": "100", "REDEEM_MAX_WAIT_SECONDS": "3600"}),
        stack.spawn("pay-watcher", ["-m", "chain.watcher"], {"WATCHER_INTERVAL_SECONDS": "0.3"}),
    ]
    yield address, OperatorStore.for_operator(store_dir, address)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(15)
    stack.redis.delete("worker:pay-echo-1")


@pytest.fixture(scope="module")
def pay_gateway(stack, recorder):
    return stack.start_gateway("pay-gateway", workers=1, threads=8)


def ticket_rows(sessions, job_ids) -> list:
    with sessions() as session:
        return list(session.scalars(select(ledger.TicketRecord).where(ledger.TicketRecord.job_id.in_(job_ids))))


def test_paid_jobs_are_redeemed_on_chain_and_the_ledger_matches(stack, http, pay_gateway, auth, admin_auth,
                                                                 sessions, operator):
    address, store = operator
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

    # Blocks pass (anvil mines only on demand) until the redeemer finds the winners due and
    # the watcher has seen them redeemed.
    def redeemed() -> bool:
        if all(t.status == ledger.REDEEMED for t in ticket_rows(sessions, job_ids)):
            return True
        mine(rpc, 1)
        time.sleep(0.3)
        return False

    wait_for(redeemed, timeout=90, what="winners redeemed and reconciled")

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
    assert {t.redemption_tx for t in ticket_rows(sessions, job_ids)} == {tx for _, tx in on_chain if tx}
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
    celery = make_celery(stack.env["REDIS_URL"])
    result = celery.send_task(names.SETTLE, args=[job_ids[0], "pay-echo-1", params], queue=names.SETTLE_QUEUE)
    assert result.get(timeout=30) == "settled"
    assert len(ticket_rows(sessions, job_ids)) == len(tickets)
