"""The frame of the gateway's back-office loops (the settler, the watcher): JSON logs, a
SIGTERM that ends the loop between two rounds, one round of work every interval whose
failures are logged and tried again on the next, and an idle wait when payments are off
(under honcho, one process ending stops them all)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

from chain.broker import NETWORK_ERRORS
from tasks import logs

log = logging.getLogger(__name__)
PAYMENTS_OFF = "payments off: set CHAIN_RPC_URL, TICKET_BROKER_ADDRESS and GATEWAY_PRIVATE_KEY"


def every(interval: float, stop: threading.Event, work: Callable[[], object], what: str) -> None:
    """work() every `interval` seconds until `stop` is set."""
    while True:
        try:
            work()
        except NETWORK_ERRORS as exc:
            log.warning("%s: the chain is unavailable, trying again: %s", what, exc)
        except Exception:  # the database away, say: the next round tries again
            log.exception("%s", what)
        if stop.wait(interval):
            return


def main(process: str, log_level: str, start: Callable[[threading.Event], None] | None) -> int:
    """Runs start(stop) as `process`, or idles when it is None (payments are off)."""
    logs.setup(process, log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if start is None:
        log.warning(PAYMENTS_OFF)
        stop.wait()
        return 0
    try:
        start(stop)
    except KeyboardInterrupt:
        pass
    return 0
