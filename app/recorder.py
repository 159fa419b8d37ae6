"""The gateway's recorder: a Celery worker on the job-events and settle queues that
writes the workers' events into PostgreSQL, then tells the job's followers; it also runs
the settle, payment-receipt and webhook tasks. Workers never touch the database.

    python -m app.recorder

RECORDER_METRICS_PORT (0: off) serves its Prometheus metrics on RECORDER_METRICS_ADDR
(127.0.0.1).
"""

import logging
import os

from sqlalchemy.exc import OperationalError

from app import metrics, settle, webhooks
from app.settings import Settings
from app.store import db
from app.store.jobs import apply_event
from app.store.media import MediaLinks, MediaStore
from tasks import live, logs, metrics_server, names
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.connections import redis_client
from tasks.messages import WorkerEvent
from tasks.status import FINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)


class Recorder:
    def __init__(self, settings: Settings, celery):
        self.sessions = db.make_sessionmaker(settings.database_url)
        self.media = MediaStore(settings.media_dir, settings.media_secret)
        self.redis = redis_client(settings.redis_url)
        self.celery = celery
        self.links = MediaLinks(settings.public_base_url, self.media,
                                settings.media_url_ttl_seconds)

    def apply(self, raw: dict) -> str:
        """Applies one worker event to its job; returns the job's status after, or
        'ignored' (an unknown job, or one already final)."""
        event = WorkerEvent.model_validate(raw)
        with db.transaction(self.sessions) as session:
            job = apply_event(session, event, self.media)
            status = job.status if job is not None else None
            if job is not None:
                webhooks.notify(self.celery, job, status, self.links)
        if event.status == JobStatus.SUCCEEDED and event.payment:
            # Also when the event is ignored as a repeat: a crash between the commit above
            # and this send must not lose the payment. Settling is idempotent by job.
            settle.request(self.celery, event)
        if status is None:
            log.info("event %s for job %s ignored (unknown or final)", event.status,
                     event.job_id)
            return "ignored"
        if status in FINAL_STATUSES:
            metrics.observe_final(job)  # once per job: a repeat leaves `job` None
        if status != JobStatus.STARTED:
            # After the commit: a follower that hears this reads the final row.
            live.publish(self.redis, event.job_id, {"event": status})
        return status


def make_recorder_celery(settings: Settings):
    catalog = Catalog.load(settings.models_file) if os.path.exists(settings.models_file) else None
    celery = make_celery(settings.redis_url, catalog, settings.max_job_seconds)
    recorder = Recorder(settings, celery)

    # While PostgreSQL is away, events wait and are retried: none is lost.
    @celery.task(name=names.JOB_EVENT, autoretry_for=(OperationalError,), max_retries=None,
                 retry_backoff=1, retry_backoff_max=30, retry_jitter=False)
    def job_event(raw: dict) -> str:
        return recorder.apply(raw)

    settle.register(celery, recorder.sessions, catalog)
    webhooks.register(celery, settings.webhook_secret)
    return celery


def main() -> None:
    settings = Settings.from_env()
    logs.setup("recorder", settings.recorder_log_level)
    logs.connect_celery()
    metrics_server.serve(settings.recorder_metrics_port, settings.recorder_metrics_addr)
    celery = make_recorder_celery(settings)
    queues = (names.EVENTS_QUEUE, names.SETTLE_QUEUE, names.WEBHOOK_QUEUE)
    celery.worker_main(["worker", "--pool=threads", "--concurrency=4",
                        f"--queues={','.join(queues)}", "--hostname=recorder@%h",
                        "--without-mingle", "--without-gossip",
                        f"--loglevel={settings.recorder_log_level}"])


if __name__ == "__main__":
    main()
