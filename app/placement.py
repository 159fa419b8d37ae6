"""Placement: a model whose queue waits longer than a target gets one more worker (one
that loads models on demand); a model loaded on demand and idle long enough is let go.
The controller runs it; every decision is logged and kept for GET /admin/placement."""

import json
import logging
import time
from dataclasses import dataclass

from app.settings import Settings
from tasks import names
from tasks.admission import estimate_wait
from tasks.catalog import Catalog
from tasks.discovery import live_workers, loads_on_demand, serves_warm

log = logging.getLogger(__name__)


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


class Placer:
    def __init__(self, redis, celery, catalog: Catalog | None, placement: Placement):
        self.redis = redis
        self.celery = celery
        self.catalog = catalog
        self.placement = placement

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
                              queue=names.worker_queue(chosen["operator"], chosen["id"]))
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
                                      queue=names.worker_queue(worker["operator"], worker["id"]))
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
