"""One logging setup for every process: JSON lines on stderr, each carrying the job id
it is about, so that one job can be followed across gateway, worker and recorder:

    grep 3f2c…e1 .run/logs/*.log        # or: jq 'select(.job_id == "3f2c…e1")'

A line is {"ts", "level", "logger", "process", "pid", "msg", "job_id"?, "exc"?}. The job
id comes from a context variable: the gateway binds it while a request handles a job,
and Celery tasks bind it from their arguments (see `connect_celery`)."""

import contextvars
import json
import logging
import os
import sys
from datetime import datetime, timezone

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
_process = {"name": os.path.basename(sys.argv[0]) or "python"}


def bind_job(job_id: str | None) -> contextvars.Token:
    """The job this thread's log lines are about from now on (None: no job)."""
    return _job_id.set(job_id)


def current_job() -> str | None:
    return _job_id.get()


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str | None = None):
        super().__init__()
        self.process = process  # else the name setup() was given

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": self.process or _process["name"],
            "pid": record.process,
            "msg": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None) or _job_id.get()
        if job_id:
            line["job_id"] = job_id
        for key in ("method", "path", "status", "ms"):  # the gateway's request lines
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def setup(process: str, level: str | int = "INFO") -> None:
    """Sends every logger's records, as JSON lines, to stderr. Called once by each
    process's entry point; calling it again replaces the handler, never adds one."""
    _process["name"] = process
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Stderr):
            root.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


# -- Celery ------------------------------------------------------------------------------

def job_of_task(task_id: str | None, args) -> str | None:
    """The job a task is about: the job message's or event's `job_id` (run, record), or
    a first argument that is a job id (settle, receipt)."""
    first = args[0] if args else None
    if isinstance(first, dict) and isinstance(first.get("job_id"), str):
        return first["job_id"]
    if isinstance(first, str) and len(first) == 36 and first.count("-") == 4:
        return first
    return None


def _task_started(task_id=None, args=None, **_):
    bind_job(job_of_task(task_id, args))


def _task_ended(**_):
    bind_job(None)


def _keep_our_logging(**_):
    """Connected to Celery's setup_logging: Celery then configures no handler of its own,
    and its lines (received, succeeded, ...) go through ours."""


def connect_celery() -> None:
    """Binds the job id around every Celery task this process runs (task_prerun and
    task_postrun run in the task's own thread), and keeps Celery's logging ours."""
    from celery import signals

    signals.setup_logging.connect(_keep_our_logging, weak=False)
    signals.task_prerun.connect(_task_started, weak=False)
    signals.task_postrun.connect(_task_ended, weak=False)
