"""The operator's redeemer process: a Celery worker on `payments:<address>` that hands
each payment to the redeemer's logic (chain/redeemer.py), keeps its answers and winners in a
local SQLite file (workers/redeemer_store.py), redeems the winners in a background loop
(which also pins each round's block hash, with REDEEM_INITIALIZE_ROUNDS), tells the gateway
its answers, and answers the gateway's requests for fresh ticket params.

    python -m workers.redeemer            # consumes payments:<OPERATOR_ADDRESS>
    python -m workers.redeemer --status   # winners by status and refusals by reason, as JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from celery import signals

from chain.broker import NETWORK_ERRORS, BrokerError, ChainEndpoint, TicketBroker
from chain.redeemer import Redeemer
from chain.rounds import RoundInitializer
from tasks import envelope, logs, names
from tasks.celery_app import make_celery, method_task
from tasks.connections import redis_client
from tasks.messages import FreshParams, PaymentReceipt
from workers.events import EventSender
from workers.payments import OperatorPayments
from workers.redeemer_store import OperatorStore
from workers.settings import OperatorSettings, RedeemerSettings

log = logging.getLogger("workers.redeemer")


def redeem_loop(chores: list, stop: threading.Event, interval: float) -> None:
    """Every `interval`, each of the chain chores (redeeming winners; pinning the round),
    each on its own: one that fails holds up no other."""
    while not stop.wait(interval):
        for chore in chores:
            try:
                chore()
            except NETWORK_ERRORS as exc:
                log.warning("chain unavailable, %s waits: %s", chore.__name__, exc)
            except BrokerError as exc:  # a revert, a gas price over the cap
                log.warning("%s: %s", chore.__name__, exc)
            except Exception:
                log.exception("redeem loop: %s", chore.__name__)


def connect_when_up(chain: ChainEndpoint, private_key: str, stop: threading.Event) -> TicketBroker | None:
    """The broker client, once the chain answers: a redeemer outlives a chain restart."""
    while not stop.is_set():
        try:
            return TicketBroker(chain.rpc_url, chain.broker_address, private_key)
        except NETWORK_ERRORS as exc:
            log.warning("waiting for the chain at %s: %s", chain.rpc_url, exc)
            stop.wait(5)
    return None


class GatewayTeller:
    """Everything the operator's redeemer tells the gateway goes through `tell`: signed, on
    the operator's own events stream (tasks/envelope.py), which its Redis user may only
    append to: its answers on a job's tickets, and fresh ticket params for a job owed."""

    def __init__(self, events: EventSender):
        self.events = events

    def tell(self, kind: str, body) -> None:
        self.events.send(kind, body)

    def receipt(self, job_id: str, answers: list[dict]) -> None:
        self.tell(envelope.RECEIPT, PaymentReceipt(job_id=job_id, results=answers))

    def params(self, job_id: str, params: dict) -> None:
        self.tell(envelope.PARAMS, FreshParams(job_id=job_id, params=params))


KILL_BETWEEN_ANSWERS_AND_WINNERS = "kill-between-answers-and-winners"


def fault_hook(settings: RedeemerSettings):
    """The fault-injection hook of REDEEMER_FAULT (testing only), or None."""
    if settings.fault == KILL_BETWEEN_ANSWERS_AND_WINNERS:
        return lambda: os.kill(os.getpid(), signal.SIGKILL)
    if settings.fault:
        raise SystemExit(f"REDEEMER_FAULT: unknown fault {settings.fault!r}")
    return None


class ParamsDesk:
    """Answers the gateway's requests for fresh ticket params for a job it owes: made like a
    worker's, from the redeemer's own recent view of the chain. While the chain does not
    answer there is no answer; the gateway asks again."""

    def __init__(self, payments: OperatorPayments, gateway: GatewayTeller):
        self.payments = payments
        self.gateway = gateway

    def request(self, job_id: str, sender: str) -> str:
        params = self.payments.params_for(sender)
        if params is None:
            log.warning("job %s: no fresh params for %s now; the gateway will ask again", job_id, sender)
            return "later"
        self.gateway.params(job_id, params)
        return "sent"


def run(settings: RedeemerSettings, operator: OperatorSettings, chain: ChainEndpoint) -> None:
    stop = threading.Event()
    broker = connect_when_up(chain, operator.private_key, stop)
    queue = names.payments_queue(operator.address)
    celery = make_celery(settings.redis_url, operator_side=True, own_queues=(queue,))
    store = OperatorStore.for_operator(settings.store_dir, operator.address, between=fault_hook(settings))
    gateway = GatewayTeller(EventSender(redis_client(settings.redis_url), settings.identity))
    redeemer = Redeemer(operator.recipient, broker, store, acknowledge=gateway.receipt,
                        max_gas_price=settings.max_gas_price, batch_size=settings.batch_size,
                        max_wait=settings.max_wait, confirmations=settings.confirmations)
    # No ceiling on the retries: a payment waits for the chain as long as it takes.
    method_task(celery, redeemer.receive, name=names.PAYMENT, autoretry_for=NETWORK_ERRORS,
                retry_backoff=True, retry_backoff_max=settings.retry_max_seconds, max_retries=None)
    desk = ParamsDesk(OperatorPayments(operator.recipient, chain), gateway)
    method_task(celery, desk.request, name=names.PARAMS_REQUEST)
    chores = [redeemer.redeem_due]
    if settings.initialize_rounds:
        chores.append(RoundInitializer(broker, settings.max_gas_price).initialize_due)
    loop = threading.Thread(target=redeem_loop, args=(chores, stop, settings.interval),
                            name="redeem", daemon=True)
    signals.worker_ready.connect(lambda **_: loop.start(), weak=False)
    signals.worker_shutdown.connect(lambda **_: stop.set(), weak=False)
    log.info("redeemer for %s: payments from queue %s, winners in %s", operator.address,
             queue, store.path)
    celery.worker_main(["worker", "--pool=threads", "--concurrency=2", f"--queues={queue}",
                        f"--hostname=redeemer-{operator.address[:10]}@%h", "--without-mingle",
                        "--without-gossip", f"--loglevel={settings.loglevel}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.redeemer",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--status", action="store_true",
                        help="print winners and refusals as JSON, then exit")
    args = parser.parse_args(argv)
    settings = RedeemerSettings.from_env()
    logs.setup("redeemer", settings.loglevel)  # JSON lines, each payment's under its job id
    logs.connect_celery()
    operator, chain = settings.operator, settings.chain
    if args.status:
        if operator is None:
            print("no operator configured (OPERATOR_ADDRESS, OPERATOR_SECRET)", file=sys.stderr)
            return 1
        store = OperatorStore.for_operator(settings.store_dir, operator.address)
        print(json.dumps(store.summary(), indent=1))
        return 0
    if operator is None or chain is None or operator.private_key is None:
        # Idle rather than exit: under honcho, one process ending stops them all.
        log.warning("payments off: set CHAIN_RPC_URL, TICKET_BROKER_ADDRESS, OPERATOR_PRIVATE_KEY "
                    "and OPERATOR_SECRET to redeem tickets")
        threading.Event().wait()
    run(settings, operator, chain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
