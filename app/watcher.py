"""The gateway's watcher: reads the TicketBroker's events about the gateway's tickets and
funds and reconciles the ledger with them: each WinningTicketRedeemed becomes a redemption
row and marks its ticket redeemed with the transaction; deposits, reserves and withdrawals
become deposit rows.

    python -m app.watcher

Its own process (Procfile `watcher`), one per gateway key is enough. It reads only blocks
WATCHER_CONFIRMATIONS deep (6 by default; 0 on the dev chain), so a redemption counts once it
is that deep: the redeemer's own receipt is provisional. It remembers the hash of the
blocks it read up to; when one changed (a reorg), it unwinds what it recorded past the
fork and reads again. Its place is in chain_cursors and every write is idempotent, so a
restart, or a second watcher, re-reads harmlessly.
"""

from __future__ import annotations

import logging
import sys
import threading

from app import periodic
from app.settings import Settings
from app.store import ledger
from app.store.db import make_sessionmaker, transaction
from chain.broker import TicketBroker
from chain.codec import to_hex

log = logging.getLogger("app.watcher")
MAX_BLOCK_RANGE = 5_000  # what public RPC nodes accept in one eth_getLogs
KEEP_BLOCKS = 256  # how far behind its place the watcher can find a fork

# event -> (the argument naming the gateway, the ledger's kind, the amount)
FUNDING_EVENTS = {
    "DepositFunded": ("sender", "deposit", lambda a: a["amount"]),
    "ReserveFunded": ("reserveHolder", "reserve", lambda a: a["amount"]),
    "Withdrawal": ("sender", "withdrawal", lambda a: a["deposit"] + a["reserve"]),
}


def fork_point(broker: TicketBroker, remembered: list[tuple[int, str]]) -> int | None:
    """None while the newest block read is still on the chain; else the newest remembered
    block that is (all above it were replaced), or one below the oldest when none is."""
    for index, (number, block_hash) in enumerate(remembered):
        on_chain = broker.block_hash(number)
        if on_chain is not None and to_hex(on_chain) == block_hash:
            return None if index == 0 else number
    return remembered[-1][0] - 1 if remembered else None


def reconcile(sessions, broker: TicketBroker, sender: str, *, confirmations: int = 0,
              from_block: int = 0, max_range: int = MAX_BLOCK_RANGE) -> dict:
    """Unwinds a reorg under what was read, then reads the events since, up to the
    confirmed depth, one block range per transaction; returns what changed, counted."""
    name = ledger.watcher_cursor(broker.address, sender)
    counts = {"redemptions": 0, "deposits": 0, "unwound": 0}
    with transaction(sessions) as session:
        done = ledger.cursor(session, name)
        remembered = ledger.remembered_blocks(session, name)
    fork = fork_point(broker, remembered) if done is not None else None
    if fork is not None:
        with transaction(sessions) as session:
            unwound = ledger.unwind(session, sender, fork)
            ledger.forget_blocks(session, name, after=fork)
            ledger.set_cursor(session, name, fork)
        counts["unwound"] = sum(unwound.values())
        log.warning("reorg: blocks after %d were replaced; unwound %s and reading again", fork, unwound)
        done = fork
    latest = broker.block_number() - confirmations
    start = from_block if done is None else done + 1
    while start <= latest:
        end = min(start + max_range - 1, latest)
        end_hash = broker.block_hash(end)
        redemptions = broker.redemption_events(start, end, sender=sender)
        funding = [(event, kind, amount(event)) for event_name, (field, kind, amount) in FUNDING_EVENTS.items()
                   for event in broker.event_logs(event_name, start, end, **{field: sender})]
        if end_hash is None or broker.block_hash(end) != end_hash:
            break  # the chain moved under the reads: the next pass sees the reorg
        with transaction(sessions) as session:
            counts["redemptions"] += sum(ledger.apply_redemption(session, r) for r in redemptions)
            counts["deposits"] += sum(ledger.apply_funding(session, e, kind, sender, amount)
                                      for e, kind, amount in funding)
            ledger.remember_block(session, name, end, end_hash)
            ledger.forget_blocks(session, name, before=end - KEEP_BLOCKS)
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
    brokers: list[TicketBroker] = []

    def watch() -> None:
        if not brokers:  # made once the chain answers
            brokers.append(TicketBroker(chain.rpc_url, chain.broker_address))
        reconcile(sessions, brokers[0], sender, **options)

    log.info("watching %s for the tickets and funds of %s, %d blocks deep", chain.broker_address, sender,
             settings.watcher_confirmations)
    periodic.every(settings.watcher_interval_seconds, stop, watch, "reconcile")


def main() -> int:
    settings = Settings.from_env()
    payments_on = settings.chain is not None and settings.gateway_address is not None
    return periodic.main("watcher", settings.watcher_log_level,
                         (lambda stop: run(settings, stop)) if payments_on else None)


if __name__ == "__main__":
    sys.exit(main())
