"""The Prometheus metrics HTTP server that the recorder and each worker slot run (one
process each, so no multiprocess directory is needed)."""

import logging
import socket

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


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
