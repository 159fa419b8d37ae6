"""GET /metrics (Prometheus), and GET /admin/scrape-targets: the workers' own metrics
endpoints, from their heartbeats, as Prometheus HTTP service discovery reads them."""

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request

from app import extensions as ext, metrics
from app.api.auth import authenticate
from app.api.errors import ApiError
from tasks.discovery import live_workers

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def prometheus():
    """Prometheus' scrape; with METRICS_TOKEN set, only with that bearer token."""
    token = ext.settings().metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            raise ApiError(401, "Invalid bearer token.", {"WWW-Authenticate": "Bearer"})
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
