"""The gateway's Prometheus metrics, served at GET /metrics.

Two kinds:
- Events counted where they happen (admission rejections, cancellations): counters,
  defined here as prometheus-client does it. Under gunicorn each worker process writes
  its own file in PROMETHEUS_MULTIPROC_DIR (see gunicorn.conf.py) and a scrape sums them,
  whichever process answers it.
- State read at scrape time from PostgreSQL and Redis by GatewayCollector (jobs by
  status, queue depths, live workers, payments): one reading per scrape, so nothing is
  counted twice however many processes or gateways there are. Every gateway reports the
  same network-wide values: aggregate them with max, not sum.

The wait and run histograms are the recorder's, observed once per job when its final
event is committed and served by the recorder itself (several recorders each count the
jobs they recorded; Prometheus sums them); GPU, model load and cache metrics are the
workers' (workers/metrics.py): each process exports its own.
"""

import logging
import os
import threading
import time

from flask import request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter
from prometheus_client import Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from app.store import stats
from tasks.discovery import live_workers

log = logging.getLogger(__name__)

ADMISSION_REJECTIONS = Counter(
    "genai_admission_rejections", "Requests refused before a job was made: no capacity "
    "within the wait limit (503) or the key's fair share used up (429)",
    ["pipeline", "reason"])
CANCELLATIONS = Counter("genai_jobs_canceled", "Jobs canceled by their clients",
                        ["pipeline", "model"])
NEW_JOB_GROUPS = Histogram("genai_new_job_group_size", "New jobs a gateway process "
                           "committed together (app/store/group_commit.py)",
                           buckets=(1, 2, 4, 8, 16, 32, 64))


# -- the recorder's ---------------------------------------------------------------------

WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)

JOB_WAIT = Histogram("genai_job_wait_seconds",
                     "Time from enqueue to start, of the jobs recorded final",
                     ["pipeline", "model"], buckets=WAIT_BUCKETS)
JOB_RUN = Histogram("genai_job_run_seconds", "Time running the pipeline, of succeeded jobs",
                    ["pipeline", "model"], buckets=RUN_BUCKETS)
JOBS_RECORDED = Counter("genai_jobs_recorded", "Jobs recorded final, by outcome",
                        ["pipeline", "model", "status"])


def observe_final(job) -> None:
    """Counts a job the recorder just made final (a Job row: pipeline, model_id, status,
    timings {"wait", "load", "run"})."""
    JOBS_RECORDED.labels(job.pipeline, job.model_id, job.status).inc()
    timings = job.timings or {}
    if timings.get("wait") is not None:
        JOB_WAIT.labels(job.pipeline, job.model_id).observe(timings["wait"])
    if timings.get("run") is not None:
        JOB_RUN.labels(job.pipeline, job.model_id).observe(timings["run"])


# -- the gateway's -----------------------------------------------------------------------

def admission_rejected(reason: str, pipeline: str | None = None) -> None:
    """Counts a refused request; the pipeline defaults to the request's route (/<pipeline>)."""
    ADMISSION_REJECTIONS.labels(pipeline or request.path.strip("/"), reason).inc()


REDIS_GROUPS = Histogram("genai_redis_group_size", "Requests whose Redis commands a "
                         "gateway process sent in one pipeline (app/shared_pipeline.py)",
                         buckets=(1, 2, 4, 8, 16, 32, 64))


def redis_group(size: int) -> None:
    REDIS_GROUPS.observe(size)


def new_job_group(size: int) -> None:
    NEW_JOB_GROUPS.observe(size)


def canceled(job) -> None:
    CANCELLATIONS.labels(job.pipeline, job.model_id).inc()


class GatewayCollector:
    """The network's state, read from PostgreSQL and Redis at most once every
    `refresh_seconds` (in the background, after the first), so that a scrape costs a
    copy of what was read, however often it comes. A source that is down is reported by
    genai_source_up and left out, never fails the scrape."""

    def __init__(self, sessions, redis, catalog, unpaid_after_seconds: float,
                 refresh_seconds: float = 15.0, clock=time.monotonic):
        self.sessions = sessions
        self.redis = redis
        self.catalog = catalog
        self.unpaid_after_seconds = unpaid_after_seconds
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._families: list | None = None
        self._read_at = float("-inf")
        self._reading = threading.Lock()

    def collect(self):
        if self._families is None:
            with self._reading:
                if self._families is None:
                    self._refresh()
        elif self.clock() - self._read_at > self.refresh_seconds \
                and self._reading.acquire(blocking=False):
            threading.Thread(target=self._refresh_then_release, daemon=True,
                             name="metrics-refresh").start()
        yield from self._families

    def _refresh_then_release(self) -> None:
        try:
            self._refresh()
        finally:
            self._reading.release()

    def _refresh(self) -> None:
        self._read_at = self.clock()
        self._families = list(self._read())

    def _read(self):
        up = GaugeMetricFamily("genai_source_up", "1 when the gateway could read the source",
                               labels=["source"])
        for source, read in (("database", self._database), ("broker", self._broker)):
            try:
                families = list(read())
            except Exception:
                log.warning("metrics: cannot read the %s", source, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _database(self):
        jobs = GaugeMetricFamily("genai_jobs", "Jobs in the database, by pipeline, model "
                                 "and status", labels=["pipeline", "model", "status"])
        with self.sessions() as session:
            for pipeline, model_id, status, count in stats.job_counts(session):
                jobs.add_metric([pipeline, model_id, status], count)
        yield jobs
        paid = stats.payments(self.sessions, self.unpaid_after_seconds)
        for name, key, help_text in (
                ("genai_tickets_issued", "tickets_issued", "Payment tickets issued"),
                ("genai_tickets_winning", "tickets_winning", "Tickets known to win"),
                ("genai_tickets_redeemed", "tickets_redeemed", "Tickets redeemed on chain")):
            yield CounterMetricFamily(name, help_text, value=paid[key])
        for name, key, help_text in (
                ("genai_payments_owed_wei", "owed_wei",
                 "EV owed: the fees of the succeeded jobs of paid workers"),
                ("genai_payments_owed_unpaid_wei", "owed_unpaid_wei",
                 "The fees of succeeded jobs still unpaid after PAYMENTS_UNPAID_SECONDS"),
                ("genai_payments_ev_issued_wei", "ev_issued_wei",
                 "Expected value of the tickets issued"),
                ("genai_payments_redeemed_wei", "redeemed_wei",
                 "Face value of the tickets redeemed on chain")):
            yield GaugeMetricFamily(name, help_text, value=paid[key])

    def _broker(self):
        depth = GaugeMetricFamily("genai_queue_depth", "Messages waiting in each declared "
                                  "queue, all priorities", labels=["queue"])
        for queue, waiting in stats.queue_depths(self.redis, self.catalog).items():
            depth.add_metric([queue], waiting)
        yield depth
        workers = live_workers(self.redis)
        yield GaugeMetricFamily("genai_workers_live", "Workers whose heartbeat is current",
                                value=len(workers))
        yield GaugeMetricFamily("genai_workers_busy", "Live workers running a job",
                                value=sum(1 for w in workers if w.get("busy")))
        held = GaugeMetricFamily("genai_model_workers", "Live workers holding the model "
                                 "ready", labels=["pipeline", "model"])
        counts: dict[tuple[str, str], int] = {}
        for worker in workers:
            for model in worker.get("models", []):
                if model.get("ready"):
                    key = (model["pipeline"], model["model_id"])
                    counts[key] = counts.get(key, 0) + 1
        for (pipeline, model_id), count in sorted(counts.items()):
            held.add_metric([pipeline, model_id], count)
        yield held


def init_app(app) -> None:
    """The app's state collector; /metrics combines it with the event counters."""
    settings = app.extensions["settings"]
    app.extensions["metrics"] = GatewayCollector(
        app.extensions["db"], app.extensions["redis"], app.extensions["catalog"],
        settings.payments_unpaid_seconds, settings.metrics_refresh_seconds)


def render(app) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # every gunicorn worker's counters
    else:
        registry.register(REGISTRY)  # one process: its own counters, process metrics
    registry.register(app.extensions["metrics"])
    return generate_latest(registry), CONTENT_TYPE_LATEST
