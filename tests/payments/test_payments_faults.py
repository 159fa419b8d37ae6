"""Payment faults on the real stack (anvil, Redis, PostgreSQL; a paid echo worker, the
recorder, the settler, the operator's redeemer, the gateway's watcher), each landed while
a payment is in flight. After each, every succeeded job is paid once (its fee covered by
the live tickets' EV within one ticket), no ticket is redeemed twice, and the ledger equals
the chain (devstack/invariants.py)."""

import signal

import pytest
from sqlalchemy import select

from app.store import ledger
from chain.broker import TicketBroker
from chain.codec import hex_to_bytes
from devstack.chain import DEV_TICKET_EV
from devstack.devchain import DEV_PRIVATE_KEYS, mine, send_eth
from devstack.stack import wait_for
from devstack.invariants import assert_every_success_paid_once, assert_ledger_equals_chain
from support import mine_until_redeemed, submit_echo, ticket_rows, wait_status

# The redeemer counts a redemption once 4 blocks deep, so a reorg above that is redeemed
# again; the watcher reads at depth 0 and must unwind what a reorg replaced.
REDEEMER_ENV = {"REDEEM_CONFIRMATIONS": "4"}

pytestmark = pytest.mark.fault


@pytest.fixture
def chain(stack):
    broker = TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"])
    broker.gateway = TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"],
                                  stack.env["GATEWAY_PRIVATE_KEY"]).account
    return broker


@pytest.fixture
def run_jobs(http, pay_gateway, auth):
    def run(count: int = 1) -> list[str]:
        job_ids = [submit_echo(http, pay_gateway, auth, steps=1, step_seconds=0.1) for _ in range(count)]
        for job_id in job_ids:
            wait_status(http, pay_gateway, auth, job_id, "succeeded", timeout=60)
        return job_ids

    return run


def debts(sessions, job_ids) -> dict:
    with sessions() as session:
        return {d.job_id: d for d in session.scalars(select(ledger.Debt).where(ledger.Debt.job_id.in_(job_ids)))}


def redemption_ids(sessions, job_ids) -> dict:
    """ticket hash -> the id of its redemption row."""
    with sessions() as session:
        return dict(session.execute(select(ledger.TicketRecord.ticket_hash, ledger.RedemptionRecord.id).join(
            ledger.RedemptionRecord, ledger.RedemptionRecord.ticket_id == ledger.TicketRecord.id).where(
            ledger.TicketRecord.job_id.in_(job_ids))).all())


def paid(sessions, job_ids) -> bool:
    found = debts(sessions, job_ids)
    return len(found) == len(job_ids) and all(d.status == ledger.PAID for d in found.values())


def mine_until_used(rpc: str, chain, sessions, job_ids) -> None:
    """Blocks pass until the redeemer's redemption is in one (anvil mines a transaction
    as it is sent), and at most one more: the reorg of the test then replaces fewer blocks
    above the redemption than the redeemer's 4 confirmations, however late the watcher
    reads it. (mine_until_redeemed mines until the watcher has read it: on a loaded
    machine, 4 blocks deep, and the redeemer counted it for good before the reorg.)"""
    def used() -> bool:
        winners = [t for t in ticket_rows(sessions, job_ids) if t.status != ledger.VOID]
        if winners and all(chain.contract.functions.usedTickets(hex_to_bytes(t.ticket_hash)).call()
                           for t in winners):
            return True
        mine(rpc, 1)
        return False

    wait_for(used, timeout=90, interval=0.3, what="the winners' redemption mined")


def all_paid_once(stack, sessions, chain, operator, job_ids) -> None:
    wait_for(lambda: paid(sessions, job_ids), timeout=90, what="every debt paid")
    mine_until_redeemed(stack.env["CHAIN_RPC_URL"], sessions, job_ids)
    assert_every_success_paid_once(sessions, job_ids, operator.address, DEV_TICKET_EV)
    assert_ledger_equals_chain(sessions, chain, chain.gateway)


def test_params_expire_while_the_redeemer_is_down_and_are_reissued_never_paid_twice(
        stack, sessions, chain, operator, run_jobs):
    operator.stop("redeemer")
    job_ids = run_jobs(2)
    wait_for(lambda: {t.job_id for t in ticket_rows(sessions, job_ids) if t.status == ledger.SENT} == set(job_ids),
             timeout=60, what="the tickets sent to the redeemer's queue")
    first = {t.ticket_hash for t in ticket_rows(sessions, job_ids)}
    mine(stack.env["CHAIN_RPC_URL"], 1_100)  # their params, and their creation round, expire
    operator.start("redeemer")

    all_paid_once(stack, sessions, chain, operator, job_ids)
    # The redeemer said `expired` (and would say it again), the chain can no longer redeem
    # them, so they were voided and their EV issued again on fresh params (the credit is
    # the operator's: the new tickets may be written for either job).
    rows = ticket_rows(sessions, job_ids)
    assert {t.ticket_hash: (t.status, t.rejection) for t in rows if t.ticket_hash in first} == {
        h: (ledger.VOID, "expired") for h in first}
    assert any(t.status == ledger.REDEEMED for t in rows)


def test_redeemer_killed_between_keeping_answers_and_winners_loses_nothing(
        stack, sessions, chain, operator, run_jobs):
    operator.stop("redeemer")
    answers, pending = operator.store.answers(), len(operator.store.pending())
    killed = operator.start("redeemer", {"REDEEMER_FAULT": "kill-between-answers-and-winners"})
    job_ids = run_jobs(1)
    assert wait_for(lambda: killed.poll(), timeout=60, what="the redeemer to die mid-payment") == -signal.SIGKILL
    # One transaction: the kill kept no answer (no nonce marked seen) without its winner.
    assert (operator.store.answers(), len(operator.store.pending())) == (answers, pending)
    operator.start("redeemer")  # the settler sends the payment again; it is taken whole
    all_paid_once(stack, sessions, chain, operator, job_ids)
    assert operator.store.answers() == answers + len(ticket_rows(sessions, job_ids))


def test_a_reorg_across_a_redemption_is_unwound_and_redeemed_again(
        stack, sessions, chain, operator, run_jobs):
    rpc = stack.env["CHAIN_RPC_URL"]
    job_ids = run_jobs(1)
    wait_for(lambda: paid(sessions, job_ids), timeout=60, what="the job's tickets taken")
    snapshot = chain.w3.provider.make_request("anvil_snapshot", [])["result"]
    mine_until_used(rpc, chain, sessions, job_ids)  # the redemption lands
    wait_for(lambda: all(t.status in (ledger.REDEEMED, ledger.VOID)
                         for t in ticket_rows(sessions, job_ids)),
             timeout=60, what="the watcher to record the redemption")  # no block more
    before = redemption_ids(sessions, job_ids)
    height = chain.block_number()

    assert chain.w3.provider.make_request("anvil_revert", [snapshot])["result"] is True
    while chain.block_number() <= height:  # different blocks over the same heights
        send_eth(rpc, chain.gateway, 1, from_key=DEV_PRIVATE_KEYS[4])
    wait_for(lambda: "reorg: blocks after" in stack.log(operator.watcher), timeout=30,
             what="the watcher to notice the reorg")

    all_paid_once(stack, sessions, chain, operator, job_ids)
    after = redemption_ids(sessions, job_ids)
    # The same tickets, each redeemed again on the new chain and recorded anew.
    assert set(after) == set(before) and not set(after.values()) & set(before.values())


def test_recorder_killed_between_a_jobs_commit_and_its_settlement(
        stack, sessions, chain, operator, recorder, run_jobs):
    settler = operator.procs["settler"]
    settler.send_signal(signal.SIGSTOP)  # nothing is settled until the recorder is gone
    try:
        job_ids = run_jobs(1)
        # The success and its debt were committed together: the kill can separate nothing.
        assert debts(sessions, job_ids)[job_ids[0]].status == ledger.OWED
        recorder.kill()
        recorder.wait()
    finally:
        settler.send_signal(signal.SIGCONT)
    stack.start_recorder()  # for the operator's receipts, and the tests after
    all_paid_once(stack, sessions, chain, operator, job_ids)
