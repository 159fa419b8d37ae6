"""The operator's own records, in a small SQLite file: its answer on every ticket it was
sent (by nonce), the winning tickets it keeps until they are redeemed, and its refusals
counted by reason.

The operator has no access to the gateway's database and needs none; nor does it keep its
winners in the broker's Redis, which the gateway runs. One file per operator address.
Answers and winners are written in one transaction (`record`): a crash keeps both or
neither, so no nonce is ever marked seen while its winner is lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from chain.codec import hex_to_bytes, to_address, to_hex
from chain.redeemer import Answer, Entry, Winner
from chain.ticket import Ticket

PENDING, SUBMITTED, REDEEMED, FAILED = "pending", "submitted", "redeemed", "failed"
STATUSES = (PENDING, SUBMITTED, REDEEMED, FAILED)
ACCEPTED = "accepted"  # the answer column's value for a ticket taken
# Answers are kept this long past their params' expiry: a copy of a ticket sent again by a
# gateway that missed the first answer gets the same answer while the gateway still asks
# (it asks again within SETTLE_RETRY_MAX_SECONDS, a minute by default).
KEEP_ANSWERS_SECONDS = 30 * 24 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    sender TEXT, rand_hash TEXT, nonce TEXT, expiration_block INTEGER,
    PRIMARY KEY (sender, rand_hash, nonce));
CREATE TABLE IF NOT EXISTS winners (
    ticket_hash TEXT PRIMARY KEY, job_id TEXT, ticket TEXT, sig TEXT, recipient_rand TEXT,
    expiration_block INTEGER, sender TEXT, rand_hash TEXT, face_value TEXT,
    status TEXT, reason TEXT, tx_hash TEXT, attempts INTEGER DEFAULT 0,
    received_at REAL, updated_at REAL);
CREATE INDEX IF NOT EXISTS winners_status ON winners (status);
CREATE TABLE IF NOT EXISTS rejections (reason TEXT PRIMARY KEY, count INTEGER);
"""
# Columns added to `seen` since its first version (a store file outlives upgrades).
SEEN_COLUMNS = {"answer": "TEXT DEFAULT 'accepted'", "winning": "INTEGER DEFAULT 0",
                "seen_at": "REAL DEFAULT 0"}


class OperatorStore:
    """The redeemer's WinnerStore (chain/redeemer.py). Safe across threads and processes
    sharing the file: each write transaction takes SQLite's write lock first."""

    def __init__(self, path: str | Path, between: Callable[[], None] | None = None):
        """`between`: a fault-injection hook run inside `record`'s transaction, after the
        answers and before the winners are written (tests kill the process there)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.between = between
        self._local = threading.local()
        db = self._db()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        have = {row[1] for row in db.execute("PRAGMA table_info(seen)")}
        for name, kind in SEEN_COLUMNS.items():
            if name not in have:
                db.execute(f"ALTER TABLE seen ADD COLUMN {name} {kind}")

    @classmethod
    def for_operator(cls, directory: str | Path, address: str, **options) -> "OperatorStore":
        return cls(Path(directory) / f"{to_address(address)}.sqlite3", **options)

    def _db(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections are not shared across threads),
        in autocommit mode: a statement alone is its own transaction, several go in
        `_transaction`."""
        if getattr(self._local, "db", None) is None:
            self._local.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        return self._local.db

    @contextmanager
    def _transaction(self):
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # the write lock now: reads inside see no race
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # ---- answers and winners ----

    def record(self, sender: str, recipient_rand_hash: bytes, expiration_block: int,
               entries: list[Entry]) -> list[Answer]:
        sender, rand_hash = to_address(sender), to_hex(recipient_rand_hash)
        with self._transaction() as db:
            answers = [self._answer(db, sender, rand_hash, expiration_block, e) for e in entries]
            if self.between is not None:
                self.between()
            for entry, answer in zip(entries, answers):
                if entry.winner is not None and not answer.repeat:
                    self._keep(db, entry.winner)
        return answers

    def _answer(self, db, sender: str, rand_hash: str, expiration_block: int, entry: Entry) -> Answer:
        """The answer kept for this nonce if there is one (a copy of an authentic ticket),
        else this one, kept when it is durable."""
        a = entry.answer
        if not entry.authentic:
            return a
        row = db.execute("SELECT answer, winning FROM seen WHERE sender = ? AND rand_hash = ? AND nonce = ?",
                         (sender, rand_hash, str(a.sender_nonce))).fetchone()
        if row is not None:
            return Answer(a.sender_nonce, None if row[0] == ACCEPTED else row[0], bool(row[1]), repeat=True)
        if entry.durable:
            db.execute("INSERT INTO seen (sender, rand_hash, nonce, expiration_block, answer, winning, seen_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (sender, rand_hash, str(a.sender_nonce), expiration_block, a.rejection or ACCEPTED,
                        int(a.winning), time.time()))
        return a

    def _keep(self, db, winner: Winner) -> None:
        t = winner.ticket
        db.execute(
            "INSERT OR IGNORE INTO winners (ticket_hash, job_id, ticket, sig, recipient_rand, expiration_block,"
            " sender, rand_hash, face_value, status, received_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (winner.hash, winner.job_id, json.dumps(t.to_dict()), to_hex(winner.sig), str(winner.recipient_rand),
             winner.expiration_block, t.sender, to_hex(t.recipient_rand_hash), str(t.face_value), PENDING,
             winner.received_at or time.time(), time.time()),
        )

    def answers(self) -> int:
        """How many nonces have an answer kept."""
        return self._db().execute("SELECT count(*) FROM seen").fetchone()[0]

    def prune(self, current_block: int, now: float) -> None:
        """Forgets answers on params long expired: no gateway asks about them any more."""
        self._db().execute("DELETE FROM seen WHERE expiration_block <= ? AND seen_at < ?",
                           (current_block, now - KEEP_ANSWERS_SECONDS))

    # ---- winners ----

    def _winners(self, status: str) -> list[Winner]:
        rows = self._db().execute(
            "SELECT ticket, sig, recipient_rand, expiration_block, job_id, received_at, attempts"
            " FROM winners WHERE status = ? ORDER BY received_at", (status,)).fetchall()
        return [Winner(Ticket.from_dict(json.loads(t)), hex_to_bytes(s), int(r), e, j, at, n)
                for t, s, r, e, j, at, n in rows]

    def pending(self) -> list[Winner]:
        return self._winners(PENDING)

    def submitted(self) -> list[Winner]:
        return self._winners(SUBMITTED)

    def pending_face_value(self, sender: str) -> int:
        """What this sender's winners still waiting to be redeemed will draw from its funds."""
        rows = self._db().execute("SELECT face_value FROM winners WHERE status = ? AND sender = ?",
                                  (PENDING, to_address(sender))).fetchall()
        return sum(int(v) for (v,) in rows)

    def revealed(self, recipient_rand_hash: bytes) -> bool:
        """True once a winner of these params was sent for redemption: its rand is public on
        chain, so a sender could now pick losing nonces; no more tickets are taken on them."""
        row = self._db().execute("SELECT 1 FROM winners WHERE rand_hash = ? AND status IN (?, ?) LIMIT 1",
                                 (to_hex(recipient_rand_hash), SUBMITTED, REDEEMED)).fetchone()
        return row is not None

    def mark_submitted(self, ticket_hash_hex: str, tx_hash: str | None, reason: str | None = None) -> None:
        """Redeemed, provisionally: until its block is deep enough a reorg may undo it."""
        self._set(ticket_hash_hex, status=SUBMITTED, tx_hash=tx_hash, reason=reason)

    def mark_redeemed(self, ticket_hash_hex: str) -> None:
        self._set(ticket_hash_hex, status=REDEEMED)

    def unsubmit(self, ticket_hash_hex: str) -> None:
        """A redemption the chain no longer shows: the winner waits to be redeemed again."""
        self._set(ticket_hash_hex, status=PENDING, tx_hash=None, reason="reorged out")

    def mark_failed(self, ticket_hash_hex: str, reason: str) -> None:
        """The contract refused it for a reason of its own: kept, with the reason, for the
        operator to look at; never retried."""
        self._set(ticket_hash_hex, status=FAILED, reason=reason)

    def note_error(self, ticket_hash_hex: str, reason: str) -> None:
        """A try that failed for no reason of the ticket's own: retried, however often,
        until the contract refuses it (its creation round expires, say)."""
        self._db().execute("UPDATE winners SET attempts = attempts + 1, reason = ?, updated_at = ?"
                           " WHERE ticket_hash = ? AND status = ?",
                           (reason, time.time(), ticket_hash_hex, PENDING))

    def _set(self, ticket_hash_hex: str, **fields) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        self._db().execute(f"UPDATE winners SET {names}, updated_at = ? WHERE ticket_hash = ?",
                           (*fields.values(), time.time(), ticket_hash_hex))

    def winners(self) -> list[dict]:
        cur = self._db().execute("SELECT ticket_hash, job_id, face_value, status, reason, tx_hash, attempts"
                                 " FROM winners ORDER BY received_at")
        columns = [c[0] for c in cur.description]
        return [dict(zip(columns, row)) for row in cur.fetchall()]

    # ---- refusals ----

    def count_rejection(self, reason: str, count: int = 1) -> None:
        self._db().execute("INSERT INTO rejections VALUES (?, ?)"
                           " ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count", (reason, count))

    def rejections(self) -> dict[str, int]:
        return dict(self._db().execute("SELECT reason, count FROM rejections").fetchall())

    def summary(self) -> dict:
        by_status = dict(self._db().execute("SELECT status, count(*) FROM winners GROUP BY status").fetchall())
        return {"winners": {s: by_status.get(s, 0) for s in STATUSES},
                "rejections": self.rejections()}
