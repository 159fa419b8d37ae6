"""The gateway's settler: pays the debts of succeeded jobs (app/settle.py) from PostgreSQL.

    python -m app.settler

Its own process (Procfile `settler`); run as many as you like (each debt is taken with
SKIP LOCKED). It signs tickets with the gateway's key (GATEWAY_PRIVATE_KEY), sends payments
and requests for params to the operators' `payments:<address>` queues, and bounds every
ticket against its own view of the chain: read in the background, never waited on, and
trusted for SETTLE_VIEW_MAX_AGE_SECONDS (debts needing new tickets wait while the view is
older; everything else goes on).
"""

from __future__ import annotations

import logging
import sys
import threading
from fractions import Fraction

from app import periodic
from app.settings import Settings, gateway_key
from app.settle import Policy, Settler
from app.store import ledger
from app.store.db import make_sessionmaker
from chain.bounds import TicketBounds, read_sender_view
from chain.broker import TicketBroker, connect
from chain.signature import address_of
from chain.view import CachedView
from tasks.celery_app import make_celery

log = logging.getLogger("app.settler")
RPC_TIMEOUT_SECONDS = 2.0
VIEW_FRESH_SECONDS = 2.0
VIEW_DOWN_SECONDS = 5.0


def policy(settings: Settings) -> Policy:
    bounds = TicketBounds(max_face_value=settings.max_face_value,
                          max_ev_fee_multiple=Fraction(settings.ticket_max_ev_fee_multiple),
                          min_ticket_ev=settings.ticket_min_ev, max_ticket_ev=settings.ticket_max_ev)
    return Policy(bounds, retry_base_seconds=settings.settle_interval_seconds,
                  retry_max_seconds=settings.settle_retry_max_seconds)


def make_settler(settings: Settings, private_key: str) -> Settler:
    chain, sender = settings.chain, address_of(private_key)
    brokers: list[TicketBroker] = []

    def read():
        if not brokers:
            brokers.append(TicketBroker(connect(chain.rpc_url, RPC_TIMEOUT_SECONDS), chain.broker_address))
        return read_sender_view(brokers[0], sender)

    view = CachedView(read, fresh=VIEW_FRESH_SECONDS, usable=settings.settle_view_max_age_seconds,
                      down=VIEW_DOWN_SECONDS, name="settler-view")
    return Settler(make_sessionmaker(settings.database_url), private_key, make_celery(settings.redis_url),
                   lambda: view.get(wait=False), ledger.watcher_cursor(chain.broker_address, sender),
                   policy(settings))


def run(settler: Settler, interval: float, stop: threading.Event) -> None:
    log.info("settling the debts owed by %s", settler.address)

    def settle() -> None:
        counts = settler.settle_due()
        if counts:
            log.info("settled: %s", counts)

    periodic.every(interval, stop, settle, "settle")


def main() -> int:
    settings = Settings.from_env()
    key = gateway_key()
    payments_on = settings.chain is not None and key is not None
    return periodic.main("settler", settings.settler_log_level, (
        lambda stop: run(make_settler(settings, key), settings.settle_interval_seconds, stop)
    ) if payments_on else None)


if __name__ == "__main__":
    sys.exit(main())
