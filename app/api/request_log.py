"""One JSON log line per gateway request, carrying the job it was about: the route's
<job_id>, or the job a pipeline request made (app/api/pipelines.py binds it)."""

import logging
import time

from flask import g, request

from tasks.logs import bind_job

log = logging.getLogger("app.requests")
# Polled by machines every few seconds: logged at DEBUG only.
QUIET_ENDPOINTS = {"metrics.prometheus", "health.health", "dashboard.dashboard_json"}


def init_app(app) -> None:
    app.before_request(_start)
    app.after_request(_log)
    app.teardown_request(lambda exc: bind_job(None))


def _start() -> None:
    g.request_started = time.perf_counter()
    bind_job((request.view_args or {}).get("job_id"))


def _log(response):
    started = g.get("request_started")
    elapsed = round((time.perf_counter() - started) * 1000, 1) if started else None
    level = logging.DEBUG if request.endpoint in QUIET_ENDPOINTS else logging.INFO
    # The path only: a query string may carry a key (GET /dashboard?key=...).
    log.log(level, "%s %s %d", request.method, request.path, response.status_code,
            extra={"method": request.method, "path": request.path,
                   "status": response.status_code, "ms": elapsed})
    return response
