"""GET /health: the gateway, its database and its broker."""

from flask import Blueprint
from sqlalchemy import text

from app import extensions as ext

bp = Blueprint("health", __name__)


def _check(probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:  # a health check reports, it never raises
        return f"error: {type(exc).__name__}"


@bp.get("/health")
def health():
    checks = {
        "gateway": "ok",
        "database": _check(lambda: ext.session().execute(text("SELECT 1"))),
        "broker": _check(ext.redis().ping),
    }
    healthy = all(v == "ok" for v in checks.values())
    workers = len(ext.workers().get(ext.redis())) if checks["broker"] == "ok" else 0
    body = {"status": "ok" if healthy else "degraded", **checks, "workers": workers}
    return body, 200 if healthy else 503
