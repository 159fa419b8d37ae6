"""New jobs written in groups (group commit): the requests of a gateway process that
commit jobs at the same moment share one transaction, whose statements psycopg sends in
one pipeline (app/groups.py). A request returns once its job is committed, as when it
wrote alone: nothing about durability changes, only how many round trips and how much of
the process's CPU a job costs under load. Alone, a job is written as before
(jobs.insert_new, one autocommit statement)."""

from __future__ import annotations

import logging

from app.groups import Grouped
from app.store import db, jobs
from app.store.media import MediaLinks
from app.store.tables import Job
from tasks.messages import JobMessage

log = logging.getLogger(__name__)


class GroupCommit:
    def __init__(self, sessions, max_group: int = 64, on_group=None):
        self.sessions = sessions
        self.grouped = Grouped(self._write, max_group, on_group)

    def insert(self, job: Job, message: JobMessage, links: MediaLinks | None) -> None:
        """Commits a job new_job made, queued (jobs.insert_new); returns once it is
        committed. IntegrityError when its Idempotency-Key is another job's."""
        self.grouped((job, message, links))

    def _write(self, group: list[tuple]) -> list:
        """All of the group in one transaction; when that fails, each alone, so that one
        job's conflict (its Idempotency-Key taken) or error is its own."""
        if len(group) > 1:
            try:
                with self.sessions.kw["bind"].begin() as connection:
                    jobs.insert_many(connection, group)
                return [None] * len(group)
            except Exception:
                log.info("a group of %d new jobs failed; writing each alone", len(group),
                         exc_info=True)
        return [self._write_alone(*new) for new in group]

    def _write_alone(self, job: Job, message: JobMessage, links: MediaLinks | None):
        try:
            with db.autocommit(self.sessions) as connection:
                jobs.insert_new(connection, job, message, links)
        except Exception as exc:  # the request it belongs to raises it
            return exc
        return None
