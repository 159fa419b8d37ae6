"""The chain node away for 60 s while jobs finish throughout, with real processes (a paid
echo worker, the recorder, the settler, the operator's redeemer, the gateway's watcher) on
anvil, stopped and started again from its state. Jobs that finish early in the outage carry
params from the worker's recent view of the chain; later ones carry none, and are owed all
the same. Afterwards every job is paid once: each winner redeemed exactly once on chain,
none refused or lost, and the gateway's ledger matches the chain."""

import threading
import time

import pytest

from chain.broker import TicketBroker
from devstack.chain import DEV_TICKET_EV
from devstack.devchain import DEV_PRIVATE_KEYS
from devstack.stack import wait_for
from devstack.invariants import assert_every_success_paid_once, assert_ledger_equals_chain
from support import mine_until_redeemed, submit_echo, ticket_rows, wait_status

pytestmark = pytest.mark.fault

OUTAGE_SECONDS = 60
JOB_EVERY_SECONDS = 6  # a job finishes every few seconds, all through the outage


def debts_without_tickets(sessions, job_ids) -> set:
    with_tickets = {t.job_id for t in ticket_rows(sessions, job_ids)}
    return set(job_ids) - with_tickets


def test_jobs_finishing_while_the_chain_is_down_for_a_minute_are_all_paid(
        stack, http, pay_gateway, auth, sessions, operator):
    rpc = stack.env["CHAIN_RPC_URL"]
    broker = TicketBroker(rpc, stack.env["TICKET_BROKER_ADDRESS"])
    gateway = TicketBroker(rpc, stack.env["TICKET_BROKER_ADDRESS"], stack.env["GATEWAY_PRIVATE_KEY"]).account
    # The round's block hash pinned in the contract, as orchestrators do every round.
    if not broker.rounds.functions.currentRoundInitialized().call():
        TicketBroker(rpc, stack.env["TICKET_BROKER_ADDRESS"], DEV_PRIVATE_KEYS[4]).initialize_round()
    # A first paid job has the worker and the settler read the chain.
    first = submit_echo(http, pay_gateway, auth)
    wait_status(http, pay_gateway, auth, first, "succeeded")
    wait_for(lambda: (rows := ticket_rows(sessions, [first])) and all(t.winning for t in rows),
             timeout=60, what="the first job's tickets accepted")

    stack.stop_chain()
    job_ids = []
    try:
        ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < ends:
            job_id = submit_echo(http, pay_gateway, auth, steps=1, step_seconds=0.1)
            wait_status(http, pay_gateway, auth, job_id, "succeeded", timeout=60)
            job_ids.append(job_id)
            threading.Event().wait(min(JOB_EVERY_SECONDS, max(0.0, ends - time.monotonic())))
        # Jobs that finished within seconds of the outage carried params from the worker's
        # recent view, and had tickets signed against the settler's (signing needs no
        # chain); later ones came with none, owed all the same, and wait for the operator's.
        assert debts_without_tickets(sessions, job_ids)
        assert "no recent view of the chain" in stack.log(operator.worker)
    finally:
        stack.start_chain()

    paid = [first] + job_ids
    wait_for(lambda: not debts_without_tickets(sessions, paid)
             and all(t.winning for t in ticket_rows(sessions, paid)),
             timeout=120, what="every job's tickets issued and accepted once the chain is back")
    mine_until_redeemed(rpc, sessions, paid)
    wait_for(lambda: operator.store.summary()["winners"]["submitted"] == 0, timeout=30,
             what="the redeemer's confirmations")
    assert operator.store.summary()["winners"]["failed"] == 0
    assert operator.store.rejections() == {}
    assert_every_success_paid_once(sessions, paid, operator.address, DEV_TICKET_EV)
    assert_ledger_equals_chain(sessions, broker, gateway)
