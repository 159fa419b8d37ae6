"""GET /metrics (Prometheus), and GET /admin/scrape-targets: the workers' own metrics
endpoints, from their heartbeats, as Prometheus HTTP service discovery reads them."""

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app

from app import extensions as ext, metrics
from app.api.auth import authenticate
from tasks.discovery import live_workers

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def prometheus():
    body, content_type = metrics.render(current_app)
    return Response(body, content_type=content_type)


@bp.get("/admin/scrape-targets")
def scrape_targets():
    """[{"targets": ["host:port"], "labels": {...}}] for Prometheus' http_sd_configs: one
    group per live worker that serves metrics (--metrics-port)."""
    authenticate(role="admin")
    groups = []
    for worker in sorted(live_workers(ext.redis()), key=lambda w: w["id"]):
        url = worker.get("metrics_url")
        if not url:
            continue
        parts = urlsplit(url)
        groups.append({"targets": [parts.netloc], "labels": {
            "__scheme__": parts.scheme, "__metrics_path__": parts.path or "/metrics",
            "worker": worker["id"], "host": worker.get("host") or "",
            "gpu": worker.get("gpu") or ""}})
    return current_app.response_class(current_app.json.dumps(groups),
                                      mimetype="application/json")
