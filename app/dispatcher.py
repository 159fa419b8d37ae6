"""Publishing a job's message again from its outbox row (app/store/tables.py JobOutbox):
the first attempt when the intake could not publish it, the same attempt when its
message was lost, the next attempt when the worker that ran it is gone or ran out of
memory. The message holds the job's inputs, so no one but the gateway needs them."""

from __future__ import annotations

import logging
import time

from app.journal import Journal
from app.store.jobs import kept_message
from tasks import control
from tasks.control import Claimant
from tasks.dispatch import outgoing, send_job
from tasks.messages import WorkerEvent
from tasks.status import REQUEUED, JobStatus

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # lost workers; then the job fails, so a job that kills its worker cannot loop


class Dispatcher:
    def __init__(self, sessions, redis, celery, journal: Journal,
                 max_attempts: int = MAX_ATTEMPTS):
        self.sessions = sessions
        self.redis = redis
        self.celery = celery
        self.journal = journal
        self.max_attempts = max_attempts

    def publish(self, job_id: str, attempt: int | None = None, first: bool = False) -> bool:
        """Sends the job's kept message (as `attempt`, else as it was); `first`: its
        control record is made too. False when no message is kept (the job is final)."""
        with self.sessions() as session:
            message = kept_message(session, job_id)
        if message is None:
            return False
        message = message.model_copy(update={"attempt": attempt or message.attempt,
                                             "declines": 0})
        if first:  # the record and the message at once; nothing when decided meanwhile
            control.init(self.redis, job_id, message.deadline, message.time_limit,
                         time.time(), outgoing(self.celery, message))
            return True
        control.published(self.redis, job_id, time.time())
        send_job(self.redis, outgoing(self.celery, message))
        return True

    def lost(self, job_id: str, claimant: Claimant, attempt: int, why: str) -> None:
        """The attempt's worker is gone: the next attempt, or a failure after too many."""
        if attempt >= self.max_attempts:
            error = f"The job failed: its worker was lost {attempt} times."
            applied, _ = control.decide(self.redis, job_id, JobStatus.FAILED, error,
                                        when=(JobStatus.STARTED,))
            if applied:
                log.warning("job %s failed: %s on attempt %d", job_id, why, attempt)
                self._record(job_id, JobStatus.FAILED, claimant, attempt, error)
            return
        self.requeue(job_id, claimant, attempt, f"{why}; retrying.")

    def requeue(self, job_id: str, claimant: Claimant, attempt: int, error: str,
                asked_by_claimant: bool = False) -> bool:
        new = control.requeue(self.redis, job_id, attempt,
                              claimant if asked_by_claimant else None)
        if not isinstance(new, int):
            return False
        log.warning("job %s requeued as attempt %d: %s", job_id, new, error)
        self._record(job_id, REQUEUED, claimant, attempt, error)
        self.publish(job_id, attempt=new)
        return True

    def _record(self, job_id: str, status: str, claimant: Claimant, attempt: int,
                error: str) -> None:
        self.journal.record(WorkerEvent(job_id=job_id, status=status, at=time.time(),
                                        worker=claimant.worker, boot=claimant.boot,
                                        attempt=attempt, error=error), claimant.operator_id)
