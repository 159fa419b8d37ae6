"""Payments end to end, with real processes on anvil: echo jobs on a paid worker, the
recorder committing each success with its debt, the settler issuing tickets, the operator's
redeemer keeping the winners and redeeming them on chain, and the watcher reconciling the
gateway's ledger with the chain."""

import time
from fractions import Fraction

from sqlalchemy import select

from app.store import ledger
from chain.broker import TicketBroker
from chain.codec import to_hex
from chain.ticket import ticket_hash
from devstack.chain import DEV_TICKET_EV
from devstack.devchain import mine
from devstack.stack import wait_for
from support import (
    leaked_secrets, mine_until_redeemed, set_consuming, submit_echo, ticket_rows, wait_status,
)
from devstack.invariants import assert_every_success_paid_once, assert_ledger_equals_chain

ECHO_FEE = 25 * 10**16  # tests/support.py
JOBS = 4
REDEEMER_ENV = {"REDEEM_INITIALIZE_ROUNDS": "1"}  # as `make run`'s: nobody else pins rounds


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
    wait_for(lambda: store.summary()["winners"] == {"pending": 0, "submitted": 0, "redeemed": len(tickets),
                                                    "failed": 0}, timeout=30, what="the redeemer's confirmations")
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
    assert mine_["jobs_paid"] == mine_["jobs_owed"] == JOBS and mine_["ev_owed"] == str(JOBS * ECHO_FEE)
    assert mine_["tickets_sent"] == mine_["winners"] == mine_["redeemed"] == len(tickets)
    assert mine_["redeemed_wei"] == str(paid) and mine_["tickets_rejected"] == 0
    payouts = http.get(f"{pay_gateway}/admin/payouts?limit=100", headers=admin_auth).json()["payouts"]
    ours = [p for p in payouts if p["recipient"] == address]
    assert [p["id"] for p in payouts] == sorted((p["id"] for p in payouts), reverse=True)
    assert {p["tx_hash"] for p in ours} == {to_hex(e.tx_hash) for e in events}
    assert {p["job_id"] for p in ours} == set(job_ids)
    assert http.get(f"{pay_gateway}/admin/payouts", headers=auth).status_code == 403

    assert summary["owed_unpaid"]["jobs"] == 0 and mine_["owed_unpaid"] == {"jobs": 0, "wei": "0"}
    assert mine_["refusals"] == {} and mine_["tickets_void"] == 0

    assert_every_success_paid_once(sessions, job_ids + [failed], address, DEV_TICKET_EV)
    assert_ledger_equals_chain(sessions, broker, gateway)
    with sessions() as session:
        assert session.get(ledger.Debt, failed) is None  # a failure owes nothing


def test_canceled_aborted_and_timed_out_jobs_on_a_paid_worker_owe_nothing(
        stack, http, pay_gateway, auth, sessions, operator):
    """Only a success is paid: a job its client canceled while it ran, one whose deadline
    passed before it started, and one stopped at its time limit, all taken by the paid
    worker, leave no debt and no ticket."""
    slow = {"steps": 200, "step_seconds": 0.05}
    canceled = submit_echo(http, pay_gateway, auth, **slow)
    wait_status(http, pay_gateway, auth, canceled, "started", timeout=60)
    assert http.post(f"{pay_gateway}/jobs/{canceled}/cancel", headers=auth).status_code == 200
    timed_out = submit_echo(http, pay_gateway, auth, headers={"X-Time-Limit-Seconds": "0.5"},
                            **slow)

    set_consuming(stack, operator.worker, "echo:echo", False, operator.operator_id)
    aborted = submit_echo(http, pay_gateway, auth, headers={"X-Deadline-Seconds": "0.5"})
    submitted = time.time()
    wait_for(lambda: time.time() > submitted + 0.6, what="the deadline to pass")
    set_consuming(stack, operator.worker, "echo:echo", True, operator.operator_id)

    for job_id, status in ((canceled, "canceled"), (timed_out, "failed"),
                           (aborted, "aborted")):
        seen = wait_status(http, pay_gateway, auth, job_id, (status, "succeeded"), timeout=60)
        assert seen["status"] == status and seen["worker"] == operator.worker, seen
        with sessions() as session:
            assert session.get(ledger.Debt, job_id) is None, status
    assert ticket_rows(sessions, [canceled, timed_out, aborted]) == []


def test_no_secret_of_the_gateway_or_the_operator_reaches_any_log(stack, operator):
    """After payments ran: the redeemer's key and secret, the operator's token and Redis
    password, and the gateway's signing key appear in no process's log."""
    redeemer_env = {**stack.env, **operator.redeemer_env}
    assert {"OPERATOR_PRIVATE_KEY", "OPERATOR_SECRET", "OPERATOR_TOKEN",
            "GATEWAY_PRIVATE_KEY"} <= redeemer_env.keys()
    assert (stack.logs / f"{operator.redeemer}.log").stat().st_size > 0
    assert not leaked_secrets(stack, redeemer_env)


def test_the_redeemer_pins_each_new_round(stack, operator):
    """A winner of a round whose block hash nobody pinned cannot be redeemed once the
    round's first block is 256 blocks old (or once a dev chain restarts from its state)."""
    rpc = stack.env["CHAIN_RPC_URL"]
    broker = TicketBroker(rpc, stack.env["TICKET_BROKER_ADDRESS"])
    start = broker.current_round_start_block() + broker.round_length()
    mine(rpc, start + 1 - broker.block_number())  # one block into the next round
    wait_for(broker.current_round_initialized, timeout=30, what="the new round pinned by the redeemer")
    assert "initialized: its block hash is pinned" in stack.log(operator.redeemer)
