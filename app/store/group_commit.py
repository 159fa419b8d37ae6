"""New jobs written in groups (group commit): the requests of a gateway process that
commit jobs at the same moment share one transaction, whose statements psycopg sends in
one pipeline. A request returns once its job is committed, as when it wrote alone:
nothing about durability changes, only how many round trips and how much of the
process's CPU a job costs under load. Alone, a job is written as before (jobs.insert_new,
one autocommit statement).

No thread of its own: the first request to find no group being written writes the
pending ones (it leads); those that arrive meanwhile wait, and the next group is led by
the first of them, so that no request writes more than one group. Under gevent (the
gateway's gunicorn workers) the waits are greenlets'; threading's primitives are
gevent's there."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from app.store import db, jobs
from app.store.media import MediaLinks
from app.store.tables import Job
from tasks.messages import JobMessage

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """One request's job, and what became of it."""

    job: Job
    message: JobMessage
    links: MediaLinks | None
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # this request writes the next group
    written: bool = False  # its group was written (committed, or failed: `error`)
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, sessions, max_group: int = 64, on_group=None):
        self.sessions = sessions
        self.max_group = max_group
        self.on_group = on_group  # called with each group's size (a metric)
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._writing = False

    def insert(self, job: Job, message: JobMessage, links: MediaLinks | None) -> None:
        """Commits a job new_job made, queued (jobs.insert_new); returns once it is
        committed. IntegrityError when its Idempotency-Key is another job's."""
        mine = _Pending(job, message, links)
        with self._lock:
            self._pending.append(mine)
            if not self._writing:
                self._writing = mine.lead = True
        if not mine.lead:
            mine.done.wait()  # its group written, or it leads the next
        if not mine.written:
            self._lead()
        if mine.error is not None:
            raise mine.error

    def _lead(self) -> None:
        """Writes the pending jobs (the leader's first), then hands over to the first
        of those that came meanwhile, or stops."""
        with self._lock:
            group = self._pending[:self.max_group]
            del self._pending[:self.max_group]
        try:
            self._write(group)
        finally:
            for pending in group:
                if not pending.written:  # the writer itself was stopped
                    pending.written = True
                    pending.error = RuntimeError("the job's group was not written")
                pending.done.set()
            with self._lock:
                following = self._pending[0] if self._pending else None
                if following is not None:
                    following.lead = True
                else:
                    self._writing = False
            if following is not None:
                following.done.set()

    def _write(self, group: list[_Pending]) -> None:
        """All of the group in one transaction; when that fails, each alone, so that one
        job's conflict (its Idempotency-Key taken) or error is its own."""
        if self.on_group is not None:
            self.on_group(len(group))
        if len(group) > 1:
            try:
                with self.sessions.kw["bind"].begin() as connection:
                    jobs.insert_many(connection, [(p.job, p.message, p.links) for p in group])
            except Exception:
                log.info("a group of %d new jobs failed; writing each alone", len(group),
                         exc_info=True)
            else:
                for pending in group:
                    pending.written = True
                return
        for pending in group:
            try:
                with db.autocommit(self.sessions) as connection:
                    jobs.insert_new(connection, pending.job, pending.message, pending.links)
            except Exception as exc:  # the request it belongs to raises it
                pending.error = exc
            pending.written = True
