"""What runs inside one worker slot: its models, its heartbeat and the job task."""

import gc
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_lib

from tasks import control, live, names
from tasks.catalog import Catalog
from tasks.dispatch import send_job
from tasks.messages import JobEvent, JobMessage, decode_bytes
from workers.cache import ModelCache
from workers.heartbeat import Heartbeat

log = logging.getLogger(__name__)
VERSION = "0.1.0"
# A job that ran out of GPU memory gets one more try, on whichever worker takes it next.
OOM_ATTEMPTS = 2


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


class JobInterrupted(Exception):
    """Raised from the step callback to stop a pipeline between two steps."""

    def __init__(self, status: str, error: str):
        super().__init__(error)
        self.status = status
        self.error = error


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

    def record(self, event: JobEvent) -> None:
        """Durable event for the gateway's recorder, through the broker."""
        self.celery.send_task(names.RECORD, args=[event.model_dump()],
                              queue=names.SETTLE_QUEUE)

    # -- the job -------------------------------------------------------------------------

    def run_job(self, raw: dict) -> dict:
        job = JobMessage.model_validate(raw)
        worker = self.settings.worker_id
        verdict = control.claim(self.redis, job.job_id, job.attempt, worker, raw)
        if verdict != "ok":
            # Canceled, finished, or superseded by a later attempt: never run twice.
            log.info("job %s attempt %d not run: %s", job.job_id, job.attempt, verdict)
            return {"status": "skipped", "reason": verdict}
        started = time.time()
        self.current_job = job.job_id
        try:
            event = self._start(job, started)
        finally:
            self.current_job = None
        if event is not None:
            # Recorded before the control record says done: a crash in between re-runs
            # the job (the recorder keeps the first outcome), never loses it.
            self.record(event)
            control.finish(self.redis, job.job_id)
        return {"status": event.status if event else "requeued"}

    def _start(self, job: JobMessage, started: float) -> JobEvent | None:
        common = dict(job_id=job.job_id, worker=self.settings.worker_id, attempt=job.attempt,
                      started_at=started)
        if job.deadline is not None and started > job.deadline:
            return JobEvent(status="aborted", at=started, **{**common, "started_at": None},
                            error="The job's deadline passed before it could start.")
        self.record(JobEvent(status="started", at=started, **common))
        live.publish(self.redis, job.job_id, {"event": "started",
                                              "worker": self.settings.worker_id})
        return self._execute(job, started, common)

    def _execute(self, job: JobMessage, started: float, common: dict) -> JobEvent | None:
        entry = self.cache.get(job.pipeline, job.model_id)
        if entry is None:
            return JobEvent(status="failed", at=time.time(), **common,
                            error=f"Model {job.model_id} is not loaded on this worker.")
        inputs = {name: decode_bytes(data) for name, data in job.inputs.items()}
        try:
            outputs = entry.runner.run(job.params, inputs, self._step_callback(job, started))
        except JobInterrupted as stop:
            return JobEvent(status=stop.status, at=time.time(), error=stop.error, **common)
        except Exception as exc:
            if _is_out_of_memory(exc):
                return self._out_of_memory(job, common)
            log.exception("job %s failed", job.job_id)
            return JobEvent(status="failed", at=time.time(), **common,
                            error=f"{_title(job.pipeline)} pipeline error.")
        finished = time.time()
        return JobEvent(status="succeeded", at=finished, outputs=outputs, **common,
                        timings={"run": round(finished - started, 4)})

    def _step_callback(self, job: JobMessage, started: float):
        """Reports progress, and stops the job between two steps when it was canceled
        or has run past its time limit."""

        def on_step(step: int, total: int) -> None:
            fraction = live.set_progress(self.redis, job.job_id, step, total)
            live.publish(self.redis, job.job_id, {"event": "progress", "step": step,
                                                  "total": total, "progress": fraction})
            if control.state(self.redis, job.job_id) == control.CANCELED:
                raise JobInterrupted("canceled", "The job was canceled.")
            if job.time_limit is not None and time.time() - started > job.time_limit:
                raise JobInterrupted("failed",
                                     f"The job ran past its time limit of {job.time_limit:g}s.")

        return on_step

    def _out_of_memory(self, job: JobMessage, common: dict) -> JobEvent | None:
        """Frees what the failed run held, then gives the job one more try elsewhere."""
        log.warning("job %s ran out of memory on attempt %d", job.job_id, job.attempt)
        gc.collect()
        if self.settings.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
        if job.attempt < OOM_ATTEMPTS:
            attempt = control.retry(self.redis, job.job_id)
            if attempt > 0:
                self.record(JobEvent(status="requeued", at=time.time(), **common,
                                     error="GPU out of memory; retrying."))
                send_job(self.celery, job.model_copy(update={"attempt": attempt}))
                return None
        return JobEvent(status="failed", at=time.time(), error="GPU out of memory.", **common)


def _is_out_of_memory(exc: Exception) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


def _title(pipeline: str) -> str:
    """'text-to-image' -> 'TextToImage', as Livepeer's runner names pipelines in errors."""
    return "".join(part.capitalize() for part in pipeline.split("-"))
