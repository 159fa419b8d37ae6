"""The sweep: every job that is not final in PostgreSQL is looked at once it is older
than a grace period, and given a live path if it has none. What can happen to a job
under a single fault, and what the sweep does:

- never published (the gateway died between its commit and the publish): published now
  from its outbox row, or failed with a clear error when no message was kept;
- its message lost while queued (a consumer died between taking it and recording it,
  or an operator took it and threw it away): published again, same attempt, once its
  queue is empty (duplicates are harmless: a worker runs only the current attempt,
  and only one worker's start claims it);
- its deadline passed while queued: aborted;
- running past its time limit (its worker stuck, or lying): failed;
- decided in Redis by the gateway (canceled, aborted, failed) but not yet in the
  database (the database was away): recorded now.

Two things a crash leaves behind are mended too: a key's fair share still counting jobs
that ended, and uploads kept for jobs that ended (app/store/inputs.py).

A job claimed by a worker that is gone is the reaper's (app/controller.py). So every
accepted job is final within its wait, its time limit (at most MAX_JOB_SECONDS) and the
grace, whatever single fault happens."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import select

from app.dispatcher import Dispatcher
from app.journal import Journal
from app.store.jobs import now
from app.store.tables import Job
from tasks import control, queues
from tasks.discovery import live_workers
from tasks.messages import WorkerEvent
from tasks.names import IN_FLIGHT_PATTERN, cold_queue
from tasks.status import JobStatus

log = logging.getLogger(__name__)
BATCH = 500
NOT_KEPT = "The job's message was lost before it could run; please submit it again."


class Sweeper:
    def __init__(self, sessions, redis, dispatcher: Dispatcher, journal: Journal,
                 grace_seconds: float):
        self.sessions = sessions
        self.redis = redis
        self.dispatcher = dispatcher
        self.journal = journal
        self.grace = grace_seconds

    def sweep(self) -> dict[str, int]:
        """One pass; returns how many jobs each kind of repair touched."""
        done = {"published": 0, "republished": 0, "aborted": 0, "timed_out": 0,
                "recorded": 0, "failed": 0, "shares": 0, "uploads": 0}
        for job_id, queue, pipeline in self._unfinished():
            found = control.read(self.redis, job_id)
            repair = self._repair(job_id, queue, pipeline, found)
            if repair:
                done[repair] += 1
        done["shares"] = self._mend_shares()
        done["uploads"] = self._mend_uploads()
        if any(done.values()):
            log.info("sweep: %s", done)
        return done

    def _unfinished(self) -> list[tuple[str, str, str]]:
        cutoff = now() - timedelta(seconds=self.grace)
        with self.sessions() as session:
            rows = session.execute(
                select(Job.id, Job.queue, Job.pipeline)
                .where(Job.status.in_([JobStatus.QUEUED, JobStatus.STARTED]),
                       Job.created_at < cutoff, Job.ran_on.is_(None))
                .order_by(Job.created_at).limit(BATCH))
            return [tuple(row) for row in rows]

    def _repair(self, job_id: str, queue: str, pipeline: str,
                found: control.Control | None) -> str | None:
        clock = time.time()
        if found is None:
            if self.dispatcher.publish(job_id, first=True):
                return "published"
            self._record(job_id, JobStatus.FAILED, NOT_KEPT)
            return "failed"
        if found.state == JobStatus.QUEUED:
            if found.deadline is not None and clock > found.deadline:
                return self._decide(job_id, JobStatus.ABORTED, (JobStatus.QUEUED,),
                                    "The job's deadline passed before it could start.",
                                    "aborted")
            if (clock - (found.published or 0) > self.grace and self._unseen(job_id)
                    and self._queue_empty(queue, pipeline) and self.dispatcher.publish(job_id)):
                return "republished"
            return None
        if found.state == JobStatus.STARTED:
            limit = found.time_limit or 0
            if found.started is not None and clock > found.started + limit + self.grace:
                return self._decide(job_id, JobStatus.FAILED, (JobStatus.STARTED,),
                                    f"The job ran past its time limit of {limit:g}s.",
                                    "timed_out")
            return None
        if found.state != JobStatus.SUCCEEDED:  # a final state the gateway decided
            self._record(job_id, found.state, found.error)
            return "recorded"
        return None  # succeeded: its worker's event is the recorder's (or parked)

    def _unseen(self, job_id: str) -> bool:
        """No live worker says it holds the job (a worker beats as it takes one)."""
        return not any(w.get("busy") == job_id for w in live_workers(self.redis))

    def _mend_shares(self) -> int:
        """Takes out of the keys' fair shares the jobs that ended, or were never made,
        while a crash kept the share from hearing of it."""
        mended = 0
        cutoff = time.time() - self.grace
        for key in self.redis.scan_iter(match=IN_FLIGHT_PATTERN, count=500):
            old = [m.decode() for m in self.redis.zrangebyscore(key, "-inf", cutoff)]
            if not old:
                continue
            alive = self._unfinished_among(old)
            gone = [job_id for job_id in old if job_id not in alive]
            if gone:
                mended += self.redis.zrem(key, *gone)
        return mended

    def _mend_uploads(self) -> int:
        """Removes the uploads kept for jobs that ended, or were never made, while a crash
        kept them from being removed (app/store/inputs.py)."""
        media = self.journal.media
        try:
            old = media.inputs_before(time.time() - self.grace)
            if not old:
                return 0
            alive = self._unfinished_among(set(old.values()))
            gone = [name for name, job_id in old.items() if job_id not in alive]
            for name in gone:
                media.discard(name)
        except OSError:  # the store away (a full disk, a mount gone): the next pass
            log.warning("could not mend the kept uploads", exc_info=True)
            return 0
        return len(gone)

    def _unfinished_among(self, job_ids) -> set[str]:
        """Those of the jobs that are queued or running (not final, and made)."""
        with self.sessions() as session:
            return set(session.scalars(select(Job.id).where(
                Job.id.in_(job_ids), Job.status.in_([JobStatus.QUEUED, JobStatus.STARTED]))))

    def _queue_empty(self, queue: str, pipeline: str) -> bool:
        return queues.depth(self.redis, queue) == 0 and \
            queues.depth(self.redis, cold_queue(pipeline)) == 0

    def _decide(self, job_id: str, status: JobStatus, when, error: str, name: str) -> str | None:
        applied, _ = control.decide(self.redis, job_id, status, error, when)
        if not applied:
            return None
        self._record(job_id, status, error)
        return name

    def _record(self, job_id: str, status: str, error: str | None) -> None:
        self.journal.record(WorkerEvent(job_id=job_id, status=status, at=time.time(),
                                        worker="", error=error))
