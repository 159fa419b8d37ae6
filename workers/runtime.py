"""What runs inside one worker slot: its models, its heartbeat and the job task."""

import logging
import os
import socket
import time

import redis as redis_lib
from tqdm import tqdm

from tasks import admission, control, live, names
from tasks.connections import redis_client
from tasks.dispatch import send_job
from tasks.messages import JobMessage, WorkerEvent, decode_bytes
from tasks.pipelines import pipeline_spec
from tasks.status import JobStatus, REQUEUED
from workers import metrics
from workers.cache import LoadedModel, ModelCache
from workers.heartbeat import Heartbeat
from workers.payments import OperatorPayments
from workers.settings import SlotSettings

log = logging.getLogger(__name__)
VERSION = "0.1.0"
# A job that ran out of GPU memory gets one more try, on whichever worker takes it next.
OOM_ATTEMPTS = 2
# A job sent back this many times for lack of room fails instead of bouncing forever.
MAX_DECLINES = 5


class JobInterrupted(Exception):
    """Raised from the step callback to stop a pipeline between two steps."""

    def __init__(self, status: str, error: str):
        super().__init__(error)
        self.status = status
        self.error = error


class NoRoom(Exception):
    """This worker cannot fit the job's model or request: another one may."""


class Runtime:
    """One slot's state. Built once per process, before the worker takes any job."""

    def __init__(self, settings: SlotSettings, celery, payments: OperatorPayments | None = None,
                 metrics_url: str | None = None):
        self.settings = settings
        self.celery = celery
        self.payments = payments  # None: this operator is not paid
        self.metrics_url = metrics_url
        self.redis = redis_client(settings.redis_url)
        self.cache = ModelCache(settings.models_dir, settings.device, settings.budget_bytes)
        self.current_job: str | None = None
        self.gpu = metrics.GpuProbe(None if settings.device.startswith("cuda") else "")
        self.heartbeat = Heartbeat(self.redis, settings.worker_id, self.describe,
                                   settings.heartbeat_interval)

    def load_warm(self) -> list[str]:
        """Loads the warm models; returns the queues this slot consumes from the start:
        those of the warm models that loaded, and the cold queues of its dynamic
        pipelines."""
        queues = []
        # A progress bar in a terminal (none in a log file: disable=None).
        for pipeline, model_id in tqdm(self.settings.warm, desc="loading warm models",
                                       unit="model", disable=None):
            entry = self.cache.load(pipeline, model_id, warm=True)
            if entry.ready:
                log.info("warm model %s loaded in %.2fs", model_id, entry.load_seconds)
                queues.append(names.model_queue(pipeline, model_id))
        return queues + [names.cold_queue(p) for p in self.settings.dynamic]

    def describe(self) -> dict:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": self.settings.device,
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "models": [m.describe() for m in self.cache.models.values()],
            "dynamic": self.settings.dynamic,
            "budget_bytes": self.settings.budget_bytes,
            "free_bytes": self.cache.free_bytes(),
            "busy": self.current_job,
            "gpu_stats": self.gpu.stats(),
            "metrics_url": self.metrics_url,
            "version": VERSION,
        }

    def _busy(self, job_id: str | None) -> None:
        """Beats at once when a job starts or ends: admission counts idle workers."""
        self.current_job = job_id
        try:
            self.heartbeat.beat()
        except redis_lib.RedisError:
            log.warning("heartbeat failed", exc_info=True)

    def report(self, event: WorkerEvent) -> None:
        """Durable event for the gateway's recorder, through the broker."""
        # A short argsrepr: Celery would otherwise render the whole event, outputs and all.
        self.celery.send_task(names.JOB_EVENT, args=[event.model_dump()],
                              queue=names.EVENTS_QUEUE,
                              argsrepr=f"[{event.status} {event.job_id}]")

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
        self._busy(job.job_id)
        try:
            event = self._run_claimed(job, started)
        except NoRoom as reason:
            return self._decline(job, str(reason))
        finally:
            self._busy(None)
        if event is not None:
            # Reported before the control record says final: a crash in between re-runs
            # the job (the recorder keeps the first outcome), never loses it.
            self.report(event)
            control.finish(self.redis, job.job_id, JobStatus(event.status))
        return {"status": event.status if event else REQUEUED}

    def _run_claimed(self, job: JobMessage, started: float) -> WorkerEvent | None:
        """Runs a job this slot claimed, from its deadline check to its outcome; None when
        it was given its next attempt elsewhere (out of memory)."""
        common = dict(job_id=job.job_id, worker=self.settings.worker_id, attempt=job.attempt,
                      started_at=started)
        if job.deadline is not None and started > job.deadline:
            return WorkerEvent(status=JobStatus.ABORTED, at=started,
                               **{**common, "started_at": None},
                               error="The job's deadline passed before it could start.")
        inputs = {name: decode_bytes(data) for name, data in job.inputs.items()}
        params = pipeline_spec(job.pipeline).params(job.params)
        entry, load_seconds = self._model_for(job, params, inputs)
        if entry is None:
            return WorkerEvent(status=JobStatus.FAILED, at=time.time(), **common,
                               error=f"Model {job.model_id} could not be loaded.")
        self.report(WorkerEvent(status=JobStatus.STARTED, at=started, **common))
        live.publish(self.redis, job.job_id, {"event": JobStatus.STARTED,
                                              "worker": self.settings.worker_id})
        timings = {"load": round(load_seconds, 4)}
        if job.enqueued_at is not None:
            timings["wait"] = round(max(0.0, started - job.enqueued_at), 4)
        return self._execute(job, entry, params, inputs, common, timings)

    def _execute(self, job: JobMessage, entry: LoadedModel, params, inputs: dict[str, bytes],
                 common: dict, timings: dict) -> WorkerEvent | None:
        started = time.time()
        try:
            outputs = entry.runner.run(params, inputs, self._step_callback(job, started))
        except JobInterrupted as stop:
            return WorkerEvent(status=stop.status, at=time.time(), error=stop.error, **common)
        except Exception as exc:
            if _is_out_of_memory(exc):
                return self._out_of_memory(job, common)
            log.exception("job %s failed", job.job_id)
            return WorkerEvent(status=JobStatus.FAILED, at=time.time(), **common,
                               error=f"{_title(job.pipeline)} pipeline error.")
        finished = time.time()
        timings["run"] = round(finished - started, 4)
        admission.observe(self.redis, job.pipeline, job.model_id, "run", finished - started)
        # Only a success carries the operator's ticket params: nothing else is paid.
        payment = self.payments.params_for(job.sender) if self.payments else None
        return WorkerEvent(status=JobStatus.SUCCEEDED, at=finished, outputs=outputs, **common,
                           timings=timings, payment=payment)

    # -- models on demand ----------------------------------------------------------------

    def _model_for(self, job: JobMessage, params, inputs: dict[str, bytes]):
        """The loaded model for the job, loading it on demand when this slot is dynamic.
        Raises NoRoom when the model or the request cannot fit here. Returns (model or
        None if it failed to load, load seconds)."""
        needed = params.request_bytes(inputs, self.settings.request_memory_scale)
        entry = self.cache.get(job.pipeline, job.model_id)
        if entry is not None:
            metrics.cache_hit(job.pipeline, job.model_id)
            self._make_room(needed, keep=entry)
            return entry, 0.0
        if job.pipeline not in self.settings.dynamic:
            raise NoRoom(f"model {job.model_id} is not held here")
        metrics.cache_miss(job.pipeline, job.model_id)
        entry = self._load_on_demand(job.pipeline, job.model_id, needed)
        return (entry if entry.ready else None), entry.load_seconds

    def _make_room(self, needed: int, keep: LoadedModel | None = None) -> None:
        """Evicts the least recently used on-demand models so that `needed` bytes fit."""
        victims = self.cache.plan_room(needed, keep=keep)
        if victims is None:
            raise NoRoom(f"{needed} bytes do not fit")
        for victim in victims:
            self._evict(victim)

    def _load_on_demand(self, pipeline: str, model_id: str, extra_bytes: int = 0):
        """Loads a model beside the others, then consumes its queue: the gateway routes
        the model's next jobs here as soon as the heartbeat says so."""
        self._make_room(self.cache.estimate(model_id) + extra_bytes)
        entry = self.cache.load(pipeline, model_id, warm=False)
        if not entry.ready:
            self.cache.models.pop((pipeline, model_id), None)
            return entry
        log.info("model %s loaded on demand in %.2fs", model_id, entry.load_seconds)
        admission.observe(self.redis, pipeline, model_id, "load", entry.load_seconds)
        self._consume(names.model_queue(pipeline, model_id), True)
        self.heartbeat.beat()
        return entry

    # -- placement (tasks from the controller, run between jobs) -------------------------

    def load_model(self, pipeline: str, model_id: str) -> str:
        if self.cache.get(pipeline, model_id) is not None:
            return "held"
        if pipeline not in self.settings.dynamic:
            return "not dynamic"
        try:
            return "loaded" if self._load_on_demand(pipeline, model_id).ready else "failed"
        except NoRoom:
            return "no room"

    def unload_model(self, pipeline: str, model_id: str) -> str:
        entry = self.cache.get(pipeline, model_id)
        if entry is None or entry.warm:
            return "kept"
        self._evict(entry)
        self.heartbeat.beat()
        return "unloaded"

    def _evict(self, model: LoadedModel) -> None:
        self._consume(names.model_queue(model.pipeline, model.model_id), False)
        self.cache.evict(model)

    def _consume(self, queue: str, start: bool) -> None:
        """Starts or stops consuming a model's queue. The command goes through the
        broker and this worker applies it once the current job is done."""
        control_api = self.celery.control
        command = control_api.add_consumer if start else control_api.cancel_consumer
        command(queue, destination=[self.settings.hostname], reply=False)

    def _decline(self, job: JobMessage, reason: str) -> dict:
        """Sends the job back for a worker with more room, or fails it after too many."""
        if not control.release(self.redis, job.job_id):
            return {"status": "skipped", "reason": "canceled"}
        if job.declines + 1 >= MAX_DECLINES:
            self.report(WorkerEvent(job_id=job.job_id, status=JobStatus.FAILED, at=time.time(),
                                    worker=self.settings.worker_id, attempt=job.attempt,
                                    error="No worker has room for this job."))
            control.finish(self.redis, job.job_id, JobStatus.FAILED)
            return {"status": JobStatus.FAILED}
        log.info("job %s declined (%s); sent back", job.job_id, reason)
        send_job(self.celery, job.model_copy(update={"declines": job.declines + 1}))
        return {"status": "declined", "reason": reason}

    # -- stopping a job ------------------------------------------------------------------

    def _step_callback(self, job: JobMessage, started: float):
        """Reports progress, and stops the job between two steps when it was canceled
        or has run past its time limit."""

        def on_step(step: int, total: int) -> None:
            if live.report_progress(self.redis, job.job_id, step, total) == JobStatus.CANCELED:
                raise JobInterrupted(JobStatus.CANCELED, "The job was canceled.")
            if job.time_limit is not None and time.time() - started > job.time_limit:
                raise JobInterrupted(JobStatus.FAILED,
                                     f"The job ran past its time limit of {job.time_limit:g}s.")

        return on_step

    def _out_of_memory(self, job: JobMessage, common: dict) -> WorkerEvent | None:
        """Frees what the failed run held, then gives the job one more try elsewhere."""
        log.warning("job %s ran out of memory on attempt %d", job.job_id, job.attempt)
        self.cache.release_memory()
        if job.attempt < OOM_ATTEMPTS:
            attempt = control.retry(self.redis, job.job_id)
            if attempt > 0:
                self.report(WorkerEvent(status=REQUEUED, at=time.time(), **common,
                                        error="GPU out of memory; retrying."))
                send_job(self.celery, job.model_copy(update={"attempt": attempt}))
                return None
        return WorkerEvent(status=JobStatus.FAILED, at=time.time(), error="GPU out of memory.",
                           **common)


def _is_out_of_memory(exc: Exception) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


def _title(pipeline: str) -> str:
    """'text-to-image' -> 'TextToImage', as Livepeer's runner names pipelines in errors."""
    return "".join(part.capitalize() for part in pipeline.split("-"))
