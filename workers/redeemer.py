"""The operator's redeemer process: a Celery worker on `payments:<address>` that hands
each payment to the redeemer's logic (chain/redeemer.py), keeps winners in a local SQLite
file (workers/redeemer_store.py), redeems them in a background loop, and acknowledges its
verdicts to the gateway.

    python -m workers.redeemer            # consumes payments:<OPERATOR_ADDRESS>
    python -m workers.redeemer --status   # winners by status and refusals by reason, as JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading

from celery import signals

from chain.broker import NETWORK_ERRORS, ChainEndpoint, TicketBroker
from chain.redeemer import Redeemer
from tasks import envelope, logs, names
from tasks.celery_app import make_celery, method_task
from tasks.connections import redis_client
from tasks.messages import PaymentReceipt
from workers.events import EventSender
from workers.redeemer_store import OperatorStore
from workers.settings import OperatorSettings, RedeemerSettings

log = logging.getLogger("workers.redeemer")


def redeem_loop(redeemer: Redeemer, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        try:
            redeemer.redeem_due()
        except NETWORK_ERRORS as exc:
            log.warning("chain unavailable, redemptions wait: %s", exc)
        except Exception:
            log.exception("redeem loop")


def connect_when_up(chain: ChainEndpoint, private_key: str, stop: threading.Event) -> TicketBroker | None:
    """The broker client, once the chain answers: a redeemer outlives a chain restart."""
    while not stop.is_set():
        try:
            return TicketBroker(chain.rpc_url, chain.broker_address, private_key)
        except NETWORK_ERRORS as exc:
            log.warning("waiting for the chain at %s: %s", chain.rpc_url, exc)
            stop.wait(5)
    return None


def run(settings: RedeemerSettings, operator: OperatorSettings, chain: ChainEndpoint) -> None:
    stop = threading.Event()
    broker = connect_when_up(chain, operator.private_key, stop)
    queue = names.payments_queue(operator.address)
    celery = make_celery(settings.redis_url, operator_side=True, own_queues=(queue,))
    store = OperatorStore.for_operator(settings.store_dir, operator.address)
    events = EventSender(redis_client(settings.redis_url), settings.identity)

    def acknowledge(job_id: str, results: list[dict]) -> None:
        """Everything the redeemer tells the gateway goes here: signed, on the
        operator's own events stream."""
        events.send(envelope.RECEIPT, PaymentReceipt(job_id=job_id, results=results))

    redeemer = Redeemer(operator.recipient, broker, store, acknowledge=acknowledge,
                        max_gas_price=settings.max_gas_price, batch_size=settings.batch_size,
                        max_wait=settings.max_wait)
    method_task(celery, redeemer.receive, name=names.PAYMENT, autoretry_for=NETWORK_ERRORS,
                retry_backoff=True, retry_backoff_max=60, max_retries=30)
    loop = threading.Thread(target=redeem_loop, args=(redeemer, stop, settings.interval),
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
