"""The journal: writes what the arbiter (tasks/control.py) decided of a job into
PostgreSQL, once, with what the decision brings in the same transaction (its history,
its result's media, the webhook deliveries it owes, the end of its outbox row), then
tells the job's followers and counts it. The recorder, the controller and the cancel
route all record through it."""

from __future__ import annotations

import logging

from app import metrics
from app.api.limits import job_ended
from app.store import db, inputs
from app.store.jobs import apply_events, insert_deliveries, job_record, webhook_owed
from app.store.media import MediaLinks, MediaStore
from app.store.tables import Job
from tasks import admission, live
from tasks.catalog import Catalog
from tasks.messages import WorkerEvent
from tasks.status import FINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)
# A final event carries the job's record (jobs.job_record) up to this size; a longer one
# (a long answer) leaves its followers to read the job (live.publish_final).
FINAL_EVENT_MAX_BYTES = 64 * 1024


class Journal:
    def __init__(self, sessions, redis, media: MediaStore, links: MediaLinks,
                 catalog: Catalog | None = None):
        self.sessions = sessions
        self.redis = redis
        self.media = media
        self.links = links
        self.catalog = catalog  # prices a success's debt: the recorder's journal has it

    def record(self, event: WorkerEvent, operator_id: int | None = None) -> str | None:
        """The job's status after the event, or None when it was already recorded."""
        return self.record_many([(event, operator_id)])[0]

    def record_many(self, events: list[tuple[WorkerEvent, int | None]]) -> list[str | None]:
        """Records events in order, in one transaction (the recorder's batch): for each,
        the job's status after it, or None when it was already recorded. All or none:
        when it raises, nothing was written."""
        changes: list[tuple[Job, str]] = []  # each change, with the status it made
        deliveries: list[dict] = []

        def owe(job: Job) -> None:
            if (delivery := webhook_owed(job, job.status, self.links)) is not None:
                deliveries.append(delivery)
            changes.append((job, job.status))

        with db.transaction(self.sessions) as session:
            changed = apply_events(session, events, self.media, self.catalog, owe)
            insert_deliveries(session, deliveries)
        made = iter(status for _, status in changes)
        statuses = [next(made) if job is not None else None for job in changed]
        # After the commit: a follower that hears of it reads what was committed, or
        # answers from the record the final event carries (the job as the transaction
        # left it: a job changes no more once final).
        with self.redis.pipeline(transaction=False) as pipe:
            for job, status in changes:
                if status in FINAL_STATUSES:
                    live.publish_final(pipe, job.id, status, job_record(job), FINAL_EVENT_MAX_BYTES)
                    job_ended(pipe, job.api_key_id, job.id)
                elif status != JobStatus.QUEUED:
                    live.publish(pipe, job.id, {"event": status})
            pipe.execute()
        finals = [job for job, status in changes if status in FINAL_STATUSES]
        for job in finals:
            log.info("job %s recorded %s", job.id, job.status, extra={"job_id": job.id})
            metrics.observe_final(job)
            self._discard_inputs(job)
        self._observe(finals)
        return statuses

    def _discard_inputs(self, job: Job) -> None:
        """A final job's kept uploads (app/store/inputs.py) are no one's any more. (A
        crash just before leaves them behind: garbage, not a job's state.)"""
        try:
            inputs.discard(self.media, job.id, inputs.upload_fields(job.pipeline))
        except OSError:
            log.warning("could not remove job %s's uploads", job.id, exc_info=True)

    def _observe(self, jobs: list[Job]) -> None:
        """Folds the run and load times into the models' estimates (admission). The
        gateway keeps them: an operator's user may not write them."""
        samples = []
        for job in jobs:
            timings = job.timings or {}
            if timings.get("run") is not None and job.status == JobStatus.SUCCEEDED:
                samples.append((job.pipeline, job.model_id, "run", timings["run"]))
            if timings.get("load"):
                samples.append((job.pipeline, job.model_id, "load", timings["load"]))
        try:
            admission.observe(self.redis, samples)
        except Exception:  # an estimate is worth less than the jobs' records
            log.warning("could not fold %d jobs' timings into the estimates", len(jobs),
                        exc_info=True)
