"""gunicorn settings for the gateway (`gunicorn -c gunicorn.conf.py 'app:create_app()'`,
as the Procfile runs it). Command-line flags still override these.

Prometheus under several worker processes: each process keeps its counters in a file
of PROMETHEUS_MULTIPROC_DIR, and /metrics sums the files of all of them. The directory
must exist before the workers import prometheus_client, and start empty: gunicorn
makes a fresh one unless it is given one, which it empties. A worker that exits is
marked dead so that its live-process gauges drop out (its counters stay counted)."""

import glob
import os
import tempfile

wsgi_app = "app:create_app()"
bind = f"127.0.0.1:{os.environ.get('GATEWAY_PORT', '8935')}"
# gevent: a client waiting for its job (a synchronous request, an SSE stream) is a
# greenlet of a few KB, not one of a few dozen threads; gunicorn patches the standard
# library before it loads the app, and psycopg 3 and redis-py cooperate with it.
worker_class = "gevent"
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
worker_connections = int(os.environ.get("GATEWAY_CONNECTIONS", "4000"))  # per worker
timeout = 0  # synchronous requests wait for their job as long as SYNC_TIMEOUT_SECONDS
# An idle keep-alive connection is closed after this long. gunicorn's 2 s is shorter than
# the idle time of a client's pooled connection (an SDK's, a test's session), and a
# request sent as the server closes its connection dies with "connection reset"; under
# gevent an idle connection costs little, so keep it as long as nginx does.
keepalive = 75

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)
else:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-prometheus-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# gunicorn's own lines as JSON, like the app's (tasks/logs.py, which each worker sets up
# on the root logger: none here, or every line would be written twice). The app logs
# each request itself, with its job id: no access log.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": []},
    "formatters": {"json": {"()": "tasks.logs.JsonFormatter", "process": "gateway"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                            "stream": "ext://sys.stderr"}},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
                "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False}},
}


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
