"""Prometheus metrics of the recorder, and the metrics HTTP server that the recorder and
each worker slot run (one process each, so no multiprocess directory is needed).

The recorder observes each job once, when its final event is committed: how long it
waited in its queue and how long it ran. Several recorders each count the jobs they
recorded; Prometheus sums them (`sum by (le) (rate(genai_job_run_seconds_bucket[5m]))`).
"""

import logging
import socket

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

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


def serve(port: int, addr: str = "127.0.0.1", advertise: str | None = None) -> str | None:
    """Serves this process's metrics on addr:port (port 0: not at all); returns the URL
    Prometheus should scrape. On 0.0.0.0 the URL names this host, unless `advertise`
    names another (what other machines reach it by)."""
    if not port:
        return None
    start_http_server(port, addr=addr)
    host = advertise or (socket.gethostname() if addr in ("0.0.0.0", "::") else addr)
    url = f"http://{host}:{port}/metrics"
    log.info("metrics on %s", url)
    return url
