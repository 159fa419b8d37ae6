"""The gateway's watcher: reads the TicketBroker's events about the gateway's tickets and
funds and reconciles the ledger with them: each WinningTicketRedeemed becomes a redemption
row and marks its ticket redeemed with the transaction; deposits, reserves and withdrawals
become deposit rows.

    python -m app.watcher

Its own process (Procfile `watcher`), one per gateway key is enough. It keeps its place in
chain_cursors and every write is idempotent, so a restart, or a second watcher, re-reads
harmlessly. WATCHER_CONFIRMATIONS blocks are left unread at the head, against reorgs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from app.settings import Settings
from app.store import ledger
from app.store.db import make_sessionmaker, transaction
from chain.broker import NETWORK_ERRORS, TicketBroker
from tasks import logs

log = logging.getLogger("app.watcher")
MAX_BLOCK_RANGE = 5_000  # what public RPC nodes accept in one eth_getLogs

# event -> (the argument naming the gateway, the ledger's kind, the amount)
FUNDING_EVENTS = {
    "DepositFunded": ("sender", "deposit", lambda a: a["amount"]),
    "ReserveFunded": ("reserveHolder", "reserve", lambda a: a["amount"]),
    "Withdrawal": ("sender", "withdrawal", lambda a: a["deposit"] + a["reserve"]),
}


def cursor_name(broker: TicketBroker, sender: str) -> str:
    return f"watcher:{broker.address}:{sender}"


def reconcile(sessions, broker: TicketBroker, sender: str, *, confirmations: int = 0,
              from_block: int = 0, max_range: int = MAX_BLOCK_RANGE) -> dict:
    """Reads the events since the last call, one block range per transaction; returns how
    many new rows each kind of event made."""
    name = cursor_name(broker, sender)
    latest = broker.block_number() - confirmations
    with transaction(sessions) as session:
        done = ledger.cursor(session, name)
    start = from_block if done is None else done + 1
    counts = {"redemptions": 0, "deposits": 0}
    while start <= latest:
        end = min(start + max_range - 1, latest)
        redemptions = broker.redemption_events(start, end, sender=sender)
        funding = [(event, kind, amount(event)) for event_name, (field, kind, amount) in FUNDING_EVENTS.items()
                   for event in broker.event_logs(event_name, start, end, **{field: sender})]
        with transaction(sessions) as session:
            counts["redemptions"] += sum(ledger.apply_redemption(session, r) for r in redemptions)
            counts["deposits"] += sum(ledger.apply_funding(session, e, kind, sender, amount)
                                      for e, kind, amount in funding)
            ledger.set_cursor(session, name, end)
        start = end + 1
    if any(counts.values()):
        log.info("reconciled up to block %d: %s", latest, counts)
    return counts


def run(settings: Settings, stop: threading.Event) -> None:
    chain, sender = settings.chain, settings.gateway_address
    sessions = make_sessionmaker(settings.database_url)
    options = {"confirmations": settings.watcher_confirmations,
               "from_block": settings.watcher_from_block}
    broker = None
    log.info("watching %s for the tickets and funds of %s", chain.broker_address, sender)
    while True:
        try:
            broker = broker or TicketBroker(chain.rpc_url, chain.broker_address)
            reconcile(sessions, broker, sender, **options)
        except NETWORK_ERRORS as exc:
            log.warning("chain unavailable, reconciling later: %s", exc)
        except Exception:
            log.exception("reconcile")
        if stop.wait(settings.watcher_interval_seconds):
            return


def main() -> int:
    settings = Settings.from_env()
    logs.setup("watcher", settings.watcher_log_level)  # JSON lines, like every process
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if settings.chain is None or settings.gateway_address is None:
        # Idle rather than exit: under honcho, one process ending stops them all.
        log.warning("payments off: set CHAIN_RPC_URL, TICKET_BROKER_ADDRESS and GATEWAY_PRIVATE_KEY")
        stop.wait()
        return 0
    try:
        run(settings, stop)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
