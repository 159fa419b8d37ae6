"""What runs inside one worker slot: its models, its heartbeat and the job task."""

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_lib

from tasks import live, names
from tasks.catalog import Catalog
from tasks.messages import JobEvent, JobMessage, decode_bytes
from workers.cache import ModelCache
from workers.heartbeat import Heartbeat

log = logging.getLogger(__name__)
VERSION = "0.1.0"


@dataclass
class SlotSettings:
    worker_id: str
    redis_url: str
    catalog: Catalog
    models_dir: Path
    device: str
    warm: list[tuple[str, str]] = field(default_factory=list)  # (pipeline, model_id)
    heartbeat_interval: float = 5.0


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Runtime:
    """One slot's state. Built once per process, before the worker takes any job."""

    def __init__(self, settings: SlotSettings, celery):
        self.settings = settings
        self.celery = celery
        self.redis = redis_lib.Redis.from_url(settings.redis_url)
        self.cache = ModelCache(settings.models_dir, settings.device)
        self.current_job: str | None = None
        self.heartbeat = Heartbeat(self.redis, settings.worker_id, self.describe,
                                   settings.heartbeat_interval)

    def load_warm(self) -> list[str]:
        """Loads the warm models; returns the queues of those that loaded."""
        queues = []
        for pipeline, model_id in self.settings.warm:
            entry = self.cache.load(pipeline, model_id, warm=True)
            if entry.ready:
                log.info("warm model %s loaded in %.2fs", model_id, entry.load_seconds)
                queues.append(names.model_queue(pipeline, model_id))
        return queues

    def describe(self) -> dict:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": self.settings.device,
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "models": [m.describe() for m in self.cache.models.values()],
            "busy": self.current_job,
            "version": VERSION,
        }

    # -- job events ----------------------------------------------------------------------

    def progress(self, job_id: str, step: int, total: int) -> None:
        fraction = live.set_progress(self.redis, job_id, step, total)
        live.publish(self.redis, job_id, {"event": "progress", "step": step, "total": total,
                                          "progress": fraction})

    def record(self, event: JobEvent) -> None:
        """Durable event for the gateway's recorder, through the broker."""
        self.celery.send_task(names.RECORD, args=[event.model_dump()],
                              queue=names.SETTLE_QUEUE)

    # -- the job -------------------------------------------------------------------------

    def run_job(self, raw: dict) -> dict:
        job = JobMessage.model_validate(raw)
        worker = self.settings.worker_id
        started = time.time()
        self.current_job = job.job_id
        try:
            self.record(JobEvent(job_id=job.job_id, status="started", at=started,
                                 worker=worker, attempt=job.attempt))
            live.publish(self.redis, job.job_id, {"event": "started", "worker": worker})
            event = self._execute(job, started)
        finally:
            self.current_job = None
        self.record(event)
        return {"status": event.status, "error": event.error}

    def _execute(self, job: JobMessage, started: float) -> JobEvent:
        entry = self.cache.get(job.pipeline, job.model_id)
        common = dict(job_id=job.job_id, worker=self.settings.worker_id, attempt=job.attempt,
                      started_at=started)
        if entry is None:
            return JobEvent(status="failed", at=time.time(), **common,
                            error=f"Model {job.model_id} is not loaded on this worker.")
        inputs = {name: decode_bytes(data) for name, data in job.inputs.items()}
        try:
            outputs = entry.runner.run(job.params, inputs,
                                       lambda s, n: self.progress(job.job_id, s, n))
        except Exception:
            log.exception("job %s failed", job.job_id)
            return JobEvent(status="failed", at=time.time(), **common,
                            error=f"{_title(job.pipeline)} pipeline error.")
        finished = time.time()
        return JobEvent(status="succeeded", at=finished, outputs=outputs, **common,
                        timings={"run": round(finished - started, 4)})


def _title(pipeline: str) -> str:
    """'text-to-image' -> 'TextToImage', as Livepeer's runner names pipelines in errors."""
    return "".join(part.capitalize() for part in pipeline.split("-"))
