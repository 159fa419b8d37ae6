"""The journal: writes what the arbiter (tasks/control.py) decided of a job into
PostgreSQL, once, with what the decision brings in the same transaction (its history,
its result's media, the webhook deliveries it owes, the end of its outbox row), then
tells the job's followers and counts it. The recorder, the controller and the cancel
route all record through it."""

from __future__ import annotations

import logging

from app import metrics
from app.api.limits import job_ended
from app.store import db
from app.store.jobs import apply_event, owe_webhook
from app.store.media import MediaLinks, MediaStore
from app.store.tables import Job
from tasks import admission, live
from tasks.catalog import Catalog
from tasks.messages import WorkerEvent
from tasks.status import FINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)


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
        with db.transaction(self.sessions) as session:
            job = apply_event(session, event, self.media, operator_id, self.catalog)
            if job is None:
                return None
            status = job.status
            owe_webhook(job, status, self.links)
        # After the commit: a follower that hears of it reads what was committed.
        if status != JobStatus.QUEUED:
            live.publish(self.redis, event.job_id, {"event": status})
        if status in FINAL_STATUSES:
            job_ended(self.redis, job.api_key_id, job.id)
            log.info("job %s recorded %s", event.job_id, status, extra={"job_id": event.job_id})
            metrics.observe_final(job)
            self._observe(job)
        return status

    def _observe(self, job: Job) -> None:
        """Folds the run and load times into the model's estimates (admission). The
        gateway keeps them: an operator's user may not write them."""
        timings = job.timings or {}
        try:
            if timings.get("run") is not None and job.status == JobStatus.SUCCEEDED:
                admission.observe(self.redis, job.pipeline, job.model_id, "run", timings["run"])
            if timings.get("load"):
                admission.observe(self.redis, job.pipeline, job.model_id, "load", timings["load"])
        except Exception:  # an estimate is worth less than the job's record
            log.warning("could not fold job %s's timings into the estimates", job.id,
                        exc_info=True)
