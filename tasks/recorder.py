"""The gateway's recorder: a Celery worker on the settle queue that writes the workers'
events into PostgreSQL, then tells the job's followers. Workers never touch the database.

    python -m tasks.recorder

RECORDER_METRICS_PORT (0: off) serves its Prometheus metrics (tasks/metrics.py) on
RECORDER_METRICS_ADDR (127.0.0.1).
"""

import logging
import os

from sqlalchemy.exc import OperationalError

from app import db as app_db
from app.config import from_env
from app.jobs import apply_event
from app.media import MediaLinks, MediaStore
from app.models import FINAL_STATUSES
from app.webhooks import notify
from tasks import live, logs, metrics, names, settle, webhooks
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.connections import redis_client
from tasks.messages import JobEvent

log = logging.getLogger(__name__)


class Recorder:
    def __init__(self, config: dict, celery):
        self.sessions = app_db.make_sessionmaker(config["DATABASE_URL"])
        self.media = MediaStore(config["MEDIA_DIR"], config["MEDIA_SECRET"])
        self.redis = redis_client(config["REDIS_URL"])
        self.celery = celery
        self.links = MediaLinks(config["PUBLIC_BASE_URL"], self.media,
                                config["MEDIA_URL_TTL_SECONDS"])

    def record(self, raw: dict) -> str:
        event = JobEvent.model_validate(raw)
        with app_db.transaction(self.sessions) as session:
            job = apply_event(session, event, self.media)
            status = job.status if job is not None else None
            if job is not None:
                notify(self.celery, job, status, self.links)
        if event.status == "succeeded" and event.payment:
            # Also when the event is ignored as a repeat: a crash between the commit above
            # and this send must not lose the payment. Settling is idempotent by job.
            settle.request(self.celery, event)
        if status is None:
            log.info("event %s for job %s ignored (unknown or final)", event.status,
                     event.job_id)
            return "ignored"
        if status in FINAL_STATUSES:
            metrics.observe_final(job)  # once per job: a repeat leaves `job` None
        if status != "started":
            # After the commit: a follower that hears this reads the final row.
            live.publish(self.redis, event.job_id, {"event": status})
        return status


def make_recorder_celery(config: dict):
    catalog_path = config["MODELS_FILE"]
    catalog = Catalog.load(catalog_path) if os.path.exists(catalog_path) else None
    celery = make_celery(config["REDIS_URL"], catalog, config["MAX_JOB_SECONDS"])
    recorder = Recorder(config, celery)

    # While PostgreSQL is away, events wait and are retried: none is lost.
    @celery.task(name=names.RECORD, autoretry_for=(OperationalError,), max_retries=None,
                 retry_backoff=1, retry_backoff_max=30, retry_jitter=False)
    def record(raw: dict) -> str:
        return recorder.record(raw)

    settle.register(celery, recorder.sessions, catalog)
    webhooks.register(celery, config["WEBHOOK_SECRET"])
    return celery


def main() -> None:
    logs.setup("recorder", os.environ.get("RECORDER_LOGLEVEL", "INFO"))
    logs.connect_celery()
    metrics.serve(int(os.environ.get("RECORDER_METRICS_PORT", "0")),
                  os.environ.get("RECORDER_METRICS_ADDR", "127.0.0.1"))
    celery = make_recorder_celery(from_env())
    celery.worker_main(["worker", "--pool=threads", "--concurrency=4",
                        f"--queues={names.SETTLE_QUEUE},{names.WEBHOOK_QUEUE}",
                        "--hostname=recorder@%h",
                        "--without-mingle", "--without-gossip",
                        f"--loglevel={os.environ.get('RECORDER_LOGLEVEL', 'INFO')}"])


if __name__ == "__main__":
    main()
