"""The gateway's recorder: a Celery worker on the settle queue that writes the workers'
events into PostgreSQL, then tells the job's followers. Workers never touch the database.

    python -m tasks.recorder
"""

import logging
import os

import redis as redis_lib

from app import db as app_db
from app.config import from_env
from app.jobs import apply_event
from app.media import MediaStore
from tasks import live, names
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.messages import JobEvent

log = logging.getLogger(__name__)


class Recorder:
    def __init__(self, config: dict):
        self.sessions = app_db.make_sessionmaker(config["DATABASE_URL"])
        self.media = MediaStore(config["MEDIA_DIR"], config["MEDIA_SECRET"])
        self.redis = redis_lib.Redis.from_url(config["REDIS_URL"])

    def record(self, raw: dict) -> str:
        event = JobEvent.model_validate(raw)
        with app_db.transaction(self.sessions) as session:
            job = apply_event(session, event, self.media)
            status = job.status if job is not None else None
        if status is None:
            log.info("event %s for job %s ignored (unknown or final)", event.status,
                     event.job_id)
            return "ignored"
        if status != "started":
            # After the commit: a follower that hears this reads the final row.
            live.publish(self.redis, event.job_id, {"event": status})
        return status


def make_recorder_celery(config: dict):
    catalog_path = config["MODELS_FILE"]
    catalog = Catalog.load(catalog_path) if os.path.exists(catalog_path) else None
    celery = make_celery(config["REDIS_URL"], catalog, config["MAX_JOB_SECONDS"])
    recorder = Recorder(config)
    celery.task(name=names.RECORD)(recorder.record)
    return celery


def main() -> None:
    logging.basicConfig(level=os.environ.get("RECORDER_LOGLEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    celery = make_recorder_celery(from_env())
    celery.worker_main(["worker", "--pool=threads", "--concurrency=4",
                        f"--queues={names.SETTLE_QUEUE}", "--hostname=recorder@%h",
                        "--without-mingle", "--without-gossip",
                        f"--loglevel={os.environ.get('RECORDER_LOGLEVEL', 'INFO')}"])


if __name__ == "__main__":
    main()
