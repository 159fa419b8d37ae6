"""The controller: one small loop beside the gateway that watches heartbeats and the
running jobs. When a worker stops beating while it runs a job (killed, its machine
gone), the job goes back to its queue at once as its next attempt; after MAX_ATTEMPTS
lost workers the job fails, so a job that kills its worker cannot loop.

    python -m tasks.controller
"""

import logging
import os
import signal
import threading
import time

import redis as redis_lib

from tasks import control, names, queues
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.discovery import live_workers, loads_on_demand, serves_warm
from tasks.dispatch import send_job
from tasks.messages import JobEvent, JobMessage

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


class Controller:
    def __init__(self, redis, celery, catalog: Catalog | None = None,
                 max_attempts: int = MAX_ATTEMPTS):
        self.redis = redis
        self.celery = celery
        self.catalog = catalog
        self.max_attempts = max_attempts

    def record(self, event: JobEvent) -> None:
        self.celery.send_task(names.RECORD, args=[event.model_dump()],
                              queue=names.SETTLE_QUEUE)

    def reap(self) -> list[str]:
        """Re-queues (or fails) the jobs of workers whose heartbeat expired."""
        handled = []
        for job_id, entry in control.running(self.redis).items():
            if self.redis.exists(names.worker_key(entry["worker"])):
                continue
            job = JobMessage.model_validate(entry["message"])
            handled.append(job_id)
            lost = f"worker {entry['worker']} was lost"
            if entry["attempt"] >= self.max_attempts:
                log.warning("job %s failed: %s on attempt %d", job_id, lost, entry["attempt"])
                self.record(JobEvent(job_id=job_id, status="failed", at=time.time(),
                                     worker=entry["worker"], attempt=entry["attempt"],
                                     error=f"The job failed: its worker was lost "
                                           f"{entry['attempt']} times."))
                control.finish(self.redis, job_id)
                continue
            attempt = control.retry(self.redis, job_id)
            if attempt > 0:
                log.warning("job %s re-queued as attempt %d: %s", job_id, attempt, lost)
                self.record(JobEvent(job_id=job_id, status="requeued", at=time.time(),
                                     worker=entry["worker"], attempt=entry["attempt"],
                                     error=f"{lost}; retrying."))
                send_job(self.celery, job.model_copy(update={"attempt": attempt}))
        return handled

    def rehome(self) -> dict[str, int]:
        """Jobs waiting in the queue of a model that no live worker holds any more (it
        was evicted, or its worker left) go to the pipeline's cold queue, where a worker
        that loads models on demand takes them."""
        if self.catalog is None:
            return {}
        workers = live_workers(self.redis)
        moved = {}
        for entry in self.catalog.entries:
            queue = names.model_queue(entry.pipeline, entry.model_id)
            if any(serves_warm(w, entry.pipeline, entry.model_id) for w in workers):
                continue
            if not any(loads_on_demand(w, entry.pipeline) for w in workers):
                continue
            count = queues.move_all(self.redis, queue, names.cold_queue(entry.pipeline))
            if count:
                log.info("moved %d job(s) from %s to its cold queue", count, queue)
                moved[queue] = count
        return moved

    def run(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                self.reap()
                self.rehome()
            except redis_lib.RedisError:
                log.warning("controller pass failed; trying again", exc_info=True)


def main() -> None:
    logging.basicConfig(level=os.environ.get("CONTROLLER_LOGLEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    catalog = Catalog.load(os.environ.get("MODELS_FILE", "models.json"))
    controller = Controller(redis_lib.Redis.from_url(redis_url),
                            make_celery(redis_url, catalog), catalog)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.run(float(os.environ.get("CONTROLLER_INTERVAL_SECONDS", "1")), stop)


if __name__ == "__main__":
    main()
