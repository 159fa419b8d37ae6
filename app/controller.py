"""The controller: one small loop beside the gateway that watches heartbeats, queues and
the running jobs.

- Lost workers: when a worker stops beating while it runs a job (killed, its machine
  gone), the job goes back to its queue at once as its next attempt; after MAX_ATTEMPTS
  lost workers the job fails, so a job that kills its worker cannot loop.
- Stranded jobs: a model's queue that no live worker consumes any more is moved to its
  pipeline's cold queue.
- Placement: a model whose queue waits longer than a target gets one more worker (one
  that loads models on demand); a model loaded on demand and idle long enough is let go.

    python -m app.controller
"""

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass

import redis as redis_lib

from app.settings import Settings
from tasks import control, names, queues
from tasks.admission import estimate_wait
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.connections import redis_client
from tasks.discovery import live_workers, loads_on_demand, serves_warm
from tasks.dispatch import send_job
from tasks.logs import setup as setup_logging
from tasks.messages import JobMessage, WorkerEvent
from tasks.status import REQUEUED, JobStatus

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Placement:
    """When to add a worker to a model (its queue's estimated wait passes the target) and
    when to let a model loaded on demand go (idle that long)."""

    target_wait_seconds: float = 30.0
    idle_seconds: float = 600.0
    cooldown_seconds: float = 30.0  # between two loads of one model, while one happens

    @classmethod
    def from_settings(cls, settings: Settings) -> "Placement":
        return cls(settings.placement_target_wait_seconds, settings.placement_idle_seconds,
                   settings.placement_cooldown_seconds)


class Controller:
    def __init__(self, redis, celery, catalog: Catalog | None = None,
                 max_attempts: int = MAX_ATTEMPTS, placement: Placement = Placement()):
        self.redis = redis
        self.celery = celery
        self.catalog = catalog
        self.max_attempts = max_attempts
        self.placement = placement

    def report(self, event: WorkerEvent) -> None:
        """Tells the recorder what became of a lost worker's job."""
        self.celery.send_task(names.JOB_EVENT, args=[event.model_dump()],
                              queue=names.EVENTS_QUEUE)

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
                self.report(WorkerEvent(job_id=job_id, status=JobStatus.FAILED, at=time.time(),
                                        worker=entry["worker"], attempt=entry["attempt"],
                                        error=f"The job failed: its worker was lost "
                                              f"{entry['attempt']} times."))
                control.finish(self.redis, job_id, JobStatus.FAILED)
                continue
            attempt = control.retry(self.redis, job_id)
            if attempt > 0:
                log.warning("job %s re-queued as attempt %d: %s", job_id, attempt, lost)
                self.report(WorkerEvent(job_id=job_id, status=REQUEUED, at=time.time(),
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

    def place(self) -> list[dict]:
        """Adds a worker to each model whose queue waits too long, and lets models loaded
        on demand go when idle; every decision is logged and kept for /admin/placement."""
        if self.catalog is None:
            return []
        workers = live_workers(self.redis)
        decisions = [d for entry in self.catalog.entries
                     if (d := self._add_worker(workers, entry.pipeline, entry.model_id))]
        decisions += self._release_idle(workers)
        for decision in decisions:
            self._log_decision(decision)
        return decisions

    def _add_worker(self, workers, pipeline: str, model_id: str) -> dict | None:
        queue = names.model_queue(pipeline, model_id)
        holders = [w for w in workers if serves_warm(w, pipeline, model_id)]
        if not holders:
            return None  # its jobs wait in the cold queue, where loaders take them
        wait = estimate_wait(self.redis, workers, queue, pipeline, model_id)
        if wait <= self.placement.target_wait_seconds:
            return None
        candidates = [w for w in workers if loads_on_demand(w, pipeline)
                      and w not in holders and not w.get("busy")]
        if not candidates:
            return None
        cooldown = names.placement_cooldown_key(pipeline, model_id)
        if not self.redis.set(cooldown, 1, nx=True, ex=int(self.placement.cooldown_seconds)):
            return None
        chosen = max(candidates, key=lambda w: w.get("free_bytes") or 0)
        self.celery.send_task(names.LOAD_MODEL, args=[pipeline, model_id],
                              queue=names.worker_queue(chosen["id"]))
        return {"action": "load", "pipeline": pipeline, "model_id": model_id,
                "worker": chosen["id"], "reason": f"estimated wait {wait:.1f}s > "
                                                  f"{self.placement.target_wait_seconds:g}s"}

    def _release_idle(self, workers) -> list[dict]:
        now = time.time()
        decisions = []
        for worker in workers:
            for model in worker.get("models", []):
                idle = now - model.get("last_used", now)
                if model["warm"] or not model["ready"] or idle < self.placement.idle_seconds:
                    continue
                self.celery.send_task(names.UNLOAD_MODEL,
                                      args=[model["pipeline"], model["model_id"]],
                                      queue=names.worker_queue(worker["id"]))
                decisions.append({"action": "unload", "pipeline": model["pipeline"],
                                  "model_id": model["model_id"], "worker": worker["id"],
                                  "reason": f"idle {idle:.0f}s"})
        return decisions

    def _log_decision(self, decision: dict) -> None:
        decision = {"at": time.time(), **decision}
        log.info("placement: %s", json.dumps(decision))
        with self.redis.pipeline() as pipe:
            pipe.lpush(names.PLACEMENT_LOG, json.dumps(decision))
            pipe.ltrim(names.PLACEMENT_LOG, 0, 199)
            pipe.execute()

    def run(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                self.reap()
                self.rehome()
                self.place()
            except redis_lib.RedisError:
                log.warning("controller pass failed; trying again", exc_info=True)


def main() -> None:
    settings = Settings.from_env()
    setup_logging("controller", settings.controller_log_level)
    catalog = Catalog.load(settings.models_file)
    controller = Controller(redis_client(settings.redis_url),
                            make_celery(settings.redis_url, catalog), catalog,
                            placement=Placement.from_settings(settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.run(settings.controller_interval_seconds, stop)


if __name__ == "__main__":
    main()
