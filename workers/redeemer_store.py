"""The operator's own records, in a small SQLite file: the nonces it has seen, the winning
tickets it keeps until they are redeemed, and its refusals counted by reason.

The operator has no access to the gateway's database and needs none; nor does it keep its
winners in the broker's Redis, which the gateway runs. One file per operator address.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from chain.codec import hex_to_bytes, to_address, to_hex
from chain.redeemer import Winner
from chain.ticket import Ticket

PENDING, REDEEMED, FAILED = "pending", "redeemed", "failed"
# A ticket left out of this many batches without a reason of its own is given up.
MAX_ATTEMPTS = 5

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


class OperatorStore:
    """The redeemer's WinnerStore (chain/redeemer.py), also the validator's SeenNonces:
    `add` is atomic across processes sharing the file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @classmethod
    def for_operator(cls, directory: str | Path, address: str) -> "OperatorStore":
        return cls(Path(directory) / f"{to_address(address)}.sqlite3")

    def _db(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections are not shared across threads);
        used as a context manager, each block is one transaction."""
        if getattr(self._local, "db", None) is None:
            self._local.db = sqlite3.connect(self.path, timeout=30)
        return self._local.db

    # ---- seen nonces ----

    def add(self, sender: str, recipient_rand_hash: bytes, nonce: int, expiration_block: int) -> bool:
        with self._db() as db:
            cur = db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)",
                             (to_address(sender), to_hex(recipient_rand_hash), str(nonce), expiration_block))
            return cur.rowcount == 1

    def prune(self, current_block: int) -> None:
        """Forgets nonces of expired params: their tickets are refused as expired anyway."""
        with self._db() as db:
            db.execute("DELETE FROM seen WHERE expiration_block <= ?", (current_block,))

    # ---- winners ----

    def keep(self, winner: Winner) -> bool:
        t = winner.ticket
        with self._db() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO winners (ticket_hash, job_id, ticket, sig, recipient_rand, expiration_block,"
                " sender, rand_hash, face_value, status, received_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (winner.hash, winner.job_id, json.dumps(t.to_dict()), to_hex(winner.sig), str(winner.recipient_rand),
                 winner.expiration_block, t.sender, to_hex(t.recipient_rand_hash), str(t.face_value), PENDING,
                 winner.received_at or time.time(), time.time()),
            )
            return cur.rowcount == 1

    def pending(self) -> list[Winner]:
        rows = self._db().execute(
            "SELECT ticket, sig, recipient_rand, expiration_block, job_id, received_at, attempts"
            " FROM winners WHERE status = ? ORDER BY received_at", (PENDING,)).fetchall()
        return [Winner(Ticket.from_dict(json.loads(t)), hex_to_bytes(s), int(r), e, j, at, n)
                for t, s, r, e, j, at, n in rows]

    def pending_face_value(self, sender: str) -> int:
        """What this sender's winners still waiting to be redeemed will draw from its funds."""
        rows = self._db().execute("SELECT face_value FROM winners WHERE status = ? AND sender = ?",
                                  (PENDING, to_address(sender))).fetchall()
        return sum(int(v) for (v,) in rows)

    def revealed(self, recipient_rand_hash: bytes) -> bool:
        """True once a winner of these params was redeemed: its rand is public on chain, so
        a sender could now pick losing nonces; no more tickets are taken on these params."""
        row = self._db().execute("SELECT 1 FROM winners WHERE rand_hash = ? AND status = ? LIMIT 1",
                                 (to_hex(recipient_rand_hash), REDEEMED)).fetchone()
        return row is not None

    def mark_redeemed(self, ticket_hash_hex: str, tx_hash: str | None, reason: str | None = None) -> None:
        self._set(ticket_hash_hex, status=REDEEMED, tx_hash=tx_hash, reason=reason)

    def mark_failed(self, ticket_hash_hex: str, reason: str) -> None:
        """Kept, with the reason, for the operator to look at; never retried."""
        self._set(ticket_hash_hex, status=FAILED, reason=reason)

    def note_error(self, ticket_hash_hex: str, reason: str) -> None:
        """A try that failed for no reason of the ticket's own: retried, MAX_ATTEMPTS times."""
        with self._db() as db:
            db.execute("UPDATE winners SET attempts = attempts + 1, reason = ?, updated_at = ?,"
                       " status = CASE WHEN attempts + 1 >= ? THEN ? ELSE status END"
                       " WHERE ticket_hash = ? AND status = ?",
                       (reason, time.time(), MAX_ATTEMPTS, FAILED, ticket_hash_hex, PENDING))

    def _set(self, ticket_hash_hex: str, **fields) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        with self._db() as db:
            db.execute(f"UPDATE winners SET {names}, updated_at = ? WHERE ticket_hash = ?",
                       (*fields.values(), time.time(), ticket_hash_hex))

    def winners(self) -> list[dict]:
        cur = self._db().execute("SELECT ticket_hash, job_id, face_value, status, reason, tx_hash, attempts"
                                 " FROM winners ORDER BY received_at")
        columns = [c[0] for c in cur.description]
        return [dict(zip(columns, row)) for row in cur.fetchall()]

    # ---- refusals ----

    def count_rejection(self, reason: str, count: int = 1) -> None:
        with self._db() as db:
            db.execute("INSERT INTO rejections VALUES (?, ?)"
                       " ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count", (reason, count))

    def rejections(self) -> dict[str, int]:
        return dict(self._db().execute("SELECT reason, count FROM rejections").fetchall())

    def summary(self) -> dict:
        by_status = dict(self._db().execute("SELECT status, count(*) FROM winners GROUP BY status").fetchall())
        return {"winners": {s: by_status.get(s, 0) for s in (PENDING, REDEEMED, FAILED)},
                "rejections": self.rejections()}
