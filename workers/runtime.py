"""What runs inside one worker slot: its models, its heartbeat and the job task.

A job's life here: the delivery is checked against the job's control record (a stale,
canceled or finished delivery is dropped unread); the slot reports `started`, which the
gateway applies as this process's claim of the attempt; the model runs while a watch
thread reports progress and stops the run if the gateway canceled it or handed the
attempt to someone else; the outcome is reported, signed, and the delivery acked. The
slot writes nothing of the gateway's but its own events stream and heartbeat."""

import logging
import os
import socket
import time
import uuid

import redis as redis_lib
import requests
from tqdm import tqdm

from tasks import control, envelope, names
from tasks.connections import redis_client
from tasks.control import Claimant, Control
from tasks.dispatch import outgoing, send_job
from tasks.messages import JobMessage, SlotStarted, WorkerEvent
from tasks.pipelines import pipeline_spec
from tasks.pipelines.base import InvalidRequest
from tasks.status import REQUEUED, JobStatus
from workers import metrics
from workers.cache import LoadedModel, ModelCache
from workers.events import EventSender
from workers.heartbeat import Heartbeat
from workers.inputs import InputsUnavailable, job_inputs
from workers.payments import OperatorPayments
from workers.settings import SlotSettings
from workers.watch import JobWatch, WatchedJob

log = logging.getLogger(__name__)
VERSION = "0.2.0"
# A job that ran out of GPU memory gets one more try, on whichever worker takes it next.
OOM_ATTEMPTS = 2
# A job sent back this many times for lack of room fails instead of bouncing forever.
MAX_DECLINES = 5


class JobInterrupted(Exception):
    """Raised from the step callback to stop a pipeline between two steps. A status of
    None: the outcome is not this run's to report (canceled, or superseded)."""

    def __init__(self, status: str | None, error: str):
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
        # This process's incarnation: a claim of a process that is gone is lost, even
        # when a new process took the same name.
        self.claimant = Claimant(settings.operator_id, settings.worker_id, uuid.uuid4().hex)
        self.redis = redis_client(settings.redis_url)
        self.events = EventSender(self.redis, settings.identity)
        self.cache = ModelCache(settings.models_dir, settings.device, settings.budget_bytes,
                                settings.runner_context())
        self.current_job: str | None = None
        self.queues: list[str] = []  # consumed now
        self.consumer = None  # Celery's consumer, once it runs (workers/slot.py)
        self.gpu = metrics.GpuProbe(None if settings.device.startswith("cuda") else "")
        self.heartbeat = Heartbeat(self.redis, settings.operator_id, settings.worker_id,
                                   self.describe, settings.heartbeat_interval)
        self.watch = JobWatch(self.redis, self.events.job_event)
        self.http = requests.Session()  # fetches the uploads the gateway links to

    def load_warm(self) -> list[str]:
        """Loads the warm models; returns the queues this slot consumes from the start:
        its own, those of the warm models that loaded, and the cold queues of its
        dynamic pipelines."""
        queues = [names.worker_queue(self.settings.operator_id, self.settings.worker_id)]
        # A progress bar in a terminal (none in a log file: disable=None).
        for pipeline, model_id in tqdm(self.settings.warm, desc="loading warm models",
                                       unit="model", disable=None):
            entry = self.cache.load(pipeline, model_id, warm=True)
            if entry.ready:
                log.info("warm model %s loaded in %.2fs", model_id, entry.load_seconds)
                queues.append(names.model_queue(pipeline, model_id))
        self.queues = queues + [names.cold_queue(p) for p in self.settings.dynamic]
        return list(self.queues)

    def announce(self) -> None:
        """Tells the gateway this process started: a predecessor of the same name that
        died mid-job lost its claims, and they are requeued at once."""
        self.events.send(envelope.SLOT, SlotStarted(worker=self.claimant.worker,
                                                    boot=self.claimant.boot, at=time.time()))

    def describe(self) -> dict:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "boot": self.claimant.boot,
            "device": self.settings.device,
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "models": [m.describe() for m in self.cache.models.values()],
            "dynamic": self.settings.dynamic,
            "queues": self.queues,
            "budget_bytes": self.settings.budget_bytes,
            "free_bytes": self.cache.free_bytes(),
            "busy": self.current_job,
            "gpu_stats": self.gpu.stats(),
            "metrics_url": self.metrics_url,
            "version": VERSION,
        }

    def _busy(self, job: JobMessage) -> Control | None:
        """Beats at once as a job is taken (the gateway's sweep sees the delivery is
        held, admission counts idle workers), and reads the job's record in the same
        round trip."""
        self.current_job = job.job_id
        found, = self.heartbeat.beat(then=lambda pipe: control.ask(pipe, job.job_id))
        return Control.parse(found)

    def _idle(self, outcome: WorkerEvent | None) -> None:
        """Beats at once as a job ends, and reports its outcome in the same round trip,
        after the beat: whoever hears of the end finds this worker idle."""
        self.current_job = None
        if outcome is not None:
            self.heartbeat.beat(then=lambda pipe: self.events.job_event(outcome, pipe))
            return
        try:
            self.heartbeat.beat()
        except redis_lib.RedisError:
            log.warning("heartbeat failed", exc_info=True)

    def report(self, event: WorkerEvent) -> None:
        self.events.job_event(event)

    # -- the job -------------------------------------------------------------------------

    def run_job(self, raw: dict) -> dict:
        job = JobMessage.model_validate(raw)
        event = None
        try:
            verdict = self._may_run(job, self._busy(job))
            if verdict is not None:
                # Canceled, finished, or another delivery's: never run twice.
                log.info("job %s attempt %d not run: %s", job.job_id, job.attempt, verdict)
                return {"status": "skipped", "reason": verdict}
            event = self._run(job, time.time())
        except NoRoom as reason:
            return self._decline(job, str(reason))
        finally:
            self.watch.end()
            self._idle(event)
        return {"status": event.status if event else "dropped"}

    def _may_run(self, job: JobMessage, found: Control | None) -> str | None:
        """None when this delivery is the job's current attempt (`found`: its record),
        still queued; else why not. The gateway's claim decides in the end: this only
        saves the work."""
        if found is None:
            return "unknown"
        if found.attempt != job.attempt:
            return "stale"
        if found.state != JobStatus.QUEUED:
            return found.state
        entry = self.settings.catalog.find(job.pipeline, job.model_id)
        if entry is None:
            return "not in the catalog"  # this worker loads nothing else, whatever it is told
        return None

    def _event(self, job: JobMessage, status: str, **fields) -> WorkerEvent:
        return WorkerEvent(job_id=job.job_id, status=status, at=time.time(),
                           worker=self.claimant.worker, boot=self.claimant.boot,
                           attempt=job.attempt, **fields)

    def _run(self, job: JobMessage, started: float) -> WorkerEvent | None:
        """Runs a delivery this slot may run, from its deadline check to its outcome;
        None when there is nothing of this run's to report."""
        if job.deadline is not None and started > job.deadline:
            return self._event(job, JobStatus.ABORTED,
                               error="The job's deadline passed before it could start.")
        try:
            inputs = job_inputs(job, self.http)
        except InputsUnavailable as exc:
            log.warning("job %s: %s", job.job_id, exc)
            return self._event(job, JobStatus.FAILED,
                               error="The job's uploads could not be fetched from the gateway.")
        params = pipeline_spec(job.pipeline).params(job.params)
        needed = params.request_bytes(inputs, self.settings.request_memory_scale)
        self._check_room(job, needed)
        self.report(self._event(job, JobStatus.STARTED, started_at=started))
        watched = self.watch.begin(job.job_id, job.attempt, self.claimant)
        entry, load_seconds = self._model_for(job, needed)
        if entry is None:
            return self._event(job, JobStatus.FAILED, started_at=started,
                               error=f"Model {job.model_id} could not be loaded.")
        timings = {"load": round(load_seconds, 4)}
        if job.enqueued_at is not None:
            timings["wait"] = round(max(0.0, started - job.enqueued_at), 4)
        return self._execute(job, entry, params, inputs, watched, started, timings)

    def _execute(self, job: JobMessage, entry: LoadedModel, params, inputs: dict[str, bytes],
                 watched: WatchedJob, started: float, timings: dict) -> WorkerEvent | None:
        running = time.time()
        try:
            outputs = entry.runner.run(params, inputs, self._step_callback(job, watched, running))
        except JobInterrupted as stop:
            if stop.status is None:
                log.info("job %s stopped: %s", job.job_id, stop.error)
                return None
            return self._event(job, stop.status, started_at=started, error=stop.error)
        except InvalidRequest as refused:  # what only the model could tell: said as it is
            return self._event(job, JobStatus.FAILED, started_at=started, error=refused.msg,
                               error_status=refused.status)
        except Exception as exc:
            if _is_out_of_memory(exc):
                return self._out_of_memory(job, started)
            log.exception("job %s failed", job.job_id)
            return self._event(job, JobStatus.FAILED, started_at=started,
                               error=f"{_title(job.pipeline)} pipeline error.")
        if watched.stop is not None:  # decided elsewhere while the last step ran
            return None
        timings["run"] = round(time.time() - running, 4)
        self.watch.report_progress(watched)  # the last step, before the outcome
        # Only a success carries the operator's ticket params and address: nothing else is
        # paid. The address always, so the job is owed even when no params could be made.
        payment = self.payments.params_for(job.sender) if self.payments else None
        payee = self.payments.payee if self.payments else None
        return self._event(job, JobStatus.SUCCEEDED, started_at=started, outputs=outputs,
                           timings=timings, payment=payment, payee=payee,
                           units=params.used_units(outputs))

    # -- models on demand ----------------------------------------------------------------

    def _check_room(self, job: JobMessage, needed: int) -> None:
        """Raises NoRoom, before the job is claimed, when its model or request cannot
        fit here."""
        entry = self.cache.get(job.pipeline, job.model_id)
        if entry is None and job.pipeline not in self.settings.dynamic:
            raise NoRoom(f"model {job.model_id} is not held here")
        planned = needed if entry is not None else needed + self.cache.estimate(job.model_id)
        if self.cache.plan_room(planned, keep=entry) is None:
            raise NoRoom(f"{planned} bytes do not fit")

    def _model_for(self, job: JobMessage, needed: int):
        """The loaded model for the job, loading it on demand when this slot is dynamic.
        Returns (model or None if it failed to load, load seconds)."""
        entry = self.cache.get(job.pipeline, job.model_id)
        if entry is not None:
            metrics.cache_hit(job.pipeline, job.model_id)
            self._make_room(needed, keep=entry)
            return entry, 0.0
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
        self._consume(names.model_queue(pipeline, model_id), True)
        self.heartbeat.beat()
        return entry

    # -- commands on this slot's own queue (the controller's placement, and tests) -------

    def load_model(self, pipeline: str, model_id: str) -> str:
        if self.cache.get(pipeline, model_id) is not None:
            return "held"
        if pipeline not in self.settings.dynamic:
            return "not dynamic"
        if self.settings.catalog.find(pipeline, model_id) is None:
            return "not in the catalog"
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

    def set_consuming(self, queue: str, consuming: bool) -> str:
        """Starts or stops taking jobs from a queue (holding a worker still, in tests and
        benchmarks); the heartbeat says which queues it consumes."""
        self._consume(queue, consuming)
        self.heartbeat.beat()
        return "consuming" if consuming else "not consuming"

    def _evict(self, model: LoadedModel) -> None:
        self._consume(names.model_queue(model.pipeline, model.model_id), False)
        self.cache.evict(model)

    def _consume(self, queue: str, start: bool) -> None:
        """Starts or stops consuming a queue, in this process: Celery's consumer applies
        it once the current task returns (the solo pool runs tasks in its loop)."""
        if start and queue not in self.queues:
            self.queues.append(queue)
        elif not start and queue in self.queues:
            self.queues.remove(queue)
        if self.consumer is not None:
            apply = self.consumer.add_task_queue if start else self.consumer.cancel_task_queue
            self.consumer.call_soon(apply, queue)

    def _decline(self, job: JobMessage, reason: str) -> dict:
        """Sends the job back, unclaimed, for a worker with more room, or fails it after
        too many declines."""
        if job.declines + 1 >= MAX_DECLINES:
            self.report(self._event(job, JobStatus.FAILED, error="No worker has room for this job."))
            return {"status": JobStatus.FAILED}
        log.info("job %s declined (%s); sent back", job.job_id, reason)
        send_job(self.redis, outgoing(self.celery,
                                      job.model_copy(update={"declines": job.declines + 1})))
        return {"status": "declined", "reason": reason}

    # -- stopping a job ------------------------------------------------------------------

    def _step_callback(self, job: JobMessage, watched: WatchedJob, started: float):
        """Records progress, with a chunk of a streamed answer when the runner gives one
        (the watch reports them), and stops the job between two steps when the gateway
        decided otherwise or it ran past its time limit. No network."""

        def on_step(step: int, total: int, chunk: dict | None = None) -> None:
            watched.step, watched.total = step, total
            if chunk is not None:
                self.watch.add_chunk(watched, chunk)
            if watched.stop is not None:
                raise JobInterrupted(*watched.stop)
            if job.time_limit is not None and time.time() - started > job.time_limit:
                raise JobInterrupted(JobStatus.FAILED,
                                     f"The job ran past its time limit of {job.time_limit:g}s.")

        return on_step

    def _out_of_memory(self, job: JobMessage, started: float) -> WorkerEvent:
        """Frees what the failed run held, then asks for one more try elsewhere (the
        gateway requeues the job as its next attempt), or fails it."""
        log.warning("job %s ran out of memory on attempt %d", job.job_id, job.attempt)
        self.cache.release_memory()
        if job.attempt < OOM_ATTEMPTS:
            return self._event(job, REQUEUED, started_at=started,
                                error="GPU out of memory; retrying.")
        return self._event(job, JobStatus.FAILED, started_at=started, error="GPU out of memory.")


def _is_out_of_memory(exc: Exception) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError)


def _title(pipeline: str) -> str:
    """'text-to-image' -> 'TextToImage', as Livepeer's runner names pipelines in errors."""
    return "".join(part.capitalize() for part in pipeline.split("-"))
