"""The controller: one small loop beside the gateway that watches heartbeats, queues and
the running jobs, so that every accepted job reaches one final state under any single
fault.

- Lost workers: a job whose claimant's process is gone (its heartbeat expired, or it
  beats with another boot id: the launcher restarted it under its name) goes back to
  its queue at once as its next attempt; after MAX_ATTEMPTS lost workers the job fails,
  so a job that kills its worker cannot loop.
- Stranded jobs: a model's queue that no live worker consumes any more is moved to its
  pipeline's cold queue.
- The sweep (app/sweeper.py): jobs with no live path left are published again, aborted
  at their deadline, or failed past their time limit.
- Placement (app/placement.py).

    python -m app.controller
"""

import json
import logging
import signal
import threading
import time

import redis as redis_lib
from sqlalchemy.exc import SQLAlchemyError

from app.dispatcher import Dispatcher
from app.journal import Journal
from app.placement import Placement, Placer
from app.settings import Settings
from app.store import db
from app.store.media import MediaLinks, MediaStore
from app.sweeper import Sweeper
from tasks import control, names, queues
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.connections import redis_client
from tasks.discovery import live_workers, loads_on_demand, serves_warm
from tasks.logs import setup as setup_logging

log = logging.getLogger(__name__)


class Controller:
    def __init__(self, redis, dispatcher: Dispatcher, catalog: Catalog | None,
                 placer: Placer, sweeper: Sweeper):
        self.redis = redis
        self.dispatcher = dispatcher
        self.catalog = catalog
        self.placer = placer
        self.sweeper = sweeper

    def reap(self) -> list[str]:
        """Requeues (or fails) the jobs whose claimant's process is gone."""
        running = control.running(self.redis)
        if not running:
            return []
        claimants = sorted({(c.operator_id, c.worker) for c, _ in running.values()})
        beats = dict(zip(claimants, self.redis.mget(
            [names.worker_key(operator_id, worker) for operator_id, worker in claimants])))
        lost = []
        for job_id, (claimant, attempt) in running.items():
            beat = beats[(claimant.operator_id, claimant.worker)]
            if beat is not None and json.loads(beat).get("boot") == claimant.boot:
                continue
            why = "was lost" if beat is None else "restarted"
            self.dispatcher.lost(job_id, claimant, attempt, f"worker {claimant.worker} {why}")
            lost.append(job_id)
        return lost

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

    def run(self, interval: float, sweep_interval: float, stop: threading.Event) -> None:
        last_sweep = 0.0
        while not stop.wait(interval):
            try:
                self.reap()
                self.rehome()
                self.placer.place()
                if time.monotonic() - last_sweep >= sweep_interval:
                    self.sweeper.sweep()
                    last_sweep = time.monotonic()
            except (redis_lib.RedisError, SQLAlchemyError):
                log.warning("controller pass failed; trying again", exc_info=True)
            except Exception:  # a bug in one step must not stop the reaper and the sweep
                log.exception("controller pass failed; trying again")


def make_controller(settings: Settings) -> Controller:
    catalog = Catalog.load(settings.models_file)
    redis = redis_client(settings.redis_url)
    celery = make_celery(settings.redis_url, catalog, settings.max_job_seconds)
    sessions = db.make_sessionmaker(settings.database_url)
    media = MediaStore(settings.media_dir, settings.media_secret)
    journal = Journal(sessions, redis, media, MediaLinks(settings.public_base_url, media,
                                                         settings.media_url_ttl_seconds))
    dispatcher = Dispatcher(sessions, redis, celery, journal)
    placer = Placer(redis, celery, catalog, Placement.from_settings(settings))
    sweeper = Sweeper(sessions, redis, dispatcher, journal, settings.sweep_grace_seconds)
    return Controller(redis, dispatcher, catalog, placer, sweeper)


def main() -> None:
    settings = Settings.from_env()
    setup_logging("controller", settings.controller_log_level)
    controller = make_controller(settings)
    log.info("controller: a pass every %gs, a sweep every %gs of jobs older than %gs",
             settings.controller_interval_seconds, settings.sweep_interval_seconds,
             settings.sweep_grace_seconds)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.run(settings.controller_interval_seconds, settings.sweep_interval_seconds, stop)


if __name__ == "__main__":
    main()
