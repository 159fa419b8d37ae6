"""The chain node stopped while jobs are settled and their tickets received, with real
processes (a paid echo worker, the recorder's settle task, the operator's redeemer, the
gateway's watcher) on anvil, stopped and started again from its state. Afterwards every
job is paid once: each winner redeemed exactly once on chain, none refused or lost, and
the gateway's ledger matches the chain."""

from chain.broker import TicketBroker
from chain.codec import to_hex
from devstack.devchain import DEV_PRIVATE_KEYS
from chain.ticket import ticket_hash
from devstack.stack import wait_for
from support import mine_until_redeemed, submit_echo, ticket_rows, wait_status

JOBS = 3


def test_tickets_received_while_the_chain_is_down_are_redeemed_once_it_is_back(
        stack, http, pay_gateway, auth, sessions, operator):
    address, store = operator.address, operator.store
    rpc = stack.env["CHAIN_RPC_URL"]
    broker = TicketBroker(rpc, stack.env["TICKET_BROKER_ADDRESS"])
    first_block = broker.block_number()
    # The round's block hash pinned in the contract, as orchestrators do every round: the
    # dev node keeps contract storage across its restart, not its blocks' hashes.
    if not broker.rounds.functions.currentRoundInitialized().call():
        TicketBroker(rpc, stack.env["TICKET_BROKER_ADDRESS"], DEV_PRIVATE_KEYS[4]).initialize_round()
    # A first paid job has the worker read the chain: the jobs after it take their ticket
    # params from that recent view while the node is away.
    first = submit_echo(http, pay_gateway, auth)
    wait_status(http, pay_gateway, auth, first, "succeeded")
    wait_for(lambda: (rows := ticket_rows(sessions, [first])) and all(t.winning for t in rows),
             timeout=60, what="the first job's tickets accepted")

    stack.stop_chain()
    try:
        job_ids = [submit_echo(http, pay_gateway, auth, steps=1, step_seconds=0.1)
                   for _ in range(JOBS)]
        for job_id in job_ids:
            wait_status(http, pay_gateway, auth, job_id, "succeeded", timeout=60)
        # Settling needs no chain (tickets are signed off chain): each job's are issued.
        wait_for(lambda: {t.job_id for t in ticket_rows(sessions, job_ids)} == set(job_ids),
                 timeout=60, what="the jobs settled while the chain is down")
        # The redeemer cannot check the sender's funds: it records nothing and retries.
        wait_for(lambda: "Retry in" in stack.log(operator.redeemer), timeout=60,
                 what="the redeemer to put a payment off")
        assert store.summary()["winners"]["pending"] == len(ticket_rows(sessions, [first]))
    finally:
        stack.start_chain()

    paid = [first] + job_ids
    wait_for(lambda: all(t.winning for t in ticket_rows(sessions, paid)), timeout=120,
             what="every ticket accepted once the chain is back")
    mine_until_redeemed(rpc, sessions, paid)

    tickets = ticket_rows(sessions, paid)
    events = broker.redemption_events(first_block, recipient=address)
    assert sorted(to_hex(ticket_hash(e.ticket)) for e in events) == sorted(
        t.ticket_hash for t in tickets)  # each winner once, none lost
    assert store.summary()["winners"] == {"pending": 0, "redeemed": len(tickets), "failed": 0}
    assert store.rejections() == {}
    assert {t.redemption_tx for t in tickets} == {to_hex(e.tx_hash) for e in events}
