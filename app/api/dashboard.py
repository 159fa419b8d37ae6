"""The admin dashboard: a read-only page that polls GET /admin/dashboard.json every 2 s.

A browser cannot send an Authorization header when it navigates, so the page takes the
admin key once (GET /dashboard?key=... or the login form) and keeps a session cookie
signed with SECRET_KEY (HttpOnly, SameSite=Strict) that names the key; the key is checked
again at every poll, so revoking it closes the dashboard. The JSON also answers to an
admin bearer key."""

import secrets
from datetime import datetime, timezone

from flask import (
    Blueprint, current_app, redirect, render_template, request, session, url_for,
)
from sqlalchemy import select

from app import extensions as ext
from app.api.auth import authenticate, hash_key
from app.api.errors import ApiError
from app.store import stats
from app.store.tables import ApiKey
from tasks.discovery import live_workers

bp = Blueprint("dashboard", __name__)
SESSION_KEY = "dashboard_key_id"
POLL_SECONDS = 2


def _admin_key(key: str) -> ApiKey | None:
    found = ext.session().scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key.strip()),
                                                     ApiKey.revoked_at.is_(None)))
    return found if found is not None and found.role == "admin" else None


def _session_admin() -> ApiKey | None:
    key_id = session.get(SESSION_KEY)
    if key_id is None:
        return None
    found = ext.session().get(ApiKey, key_id)
    if found is None or found.revoked_at is not None or found.role != "admin":
        return None
    return found


def _page(template: str, status: int = 200, **context):
    """A page with a Content-Security-Policy that lets only its own inline script and
    style run, and lets it talk only to this gateway."""
    nonce = secrets.token_urlsafe(16)
    body = render_template(template, nonce=nonce, poll_ms=POLL_SECONDS * 1000, **context)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
           "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
           "frame-ancestors 'none'")
    return body, status, {"Content-Security-Policy": csp, "Cache-Control": "no-store",
                          "Referrer-Policy": "no-referrer"}


@bp.route("/dashboard", methods=["GET", "POST"])
def dashboard():
    key = request.form.get("key") if request.method == "POST" else request.args.get("key")
    if key is not None:
        return _log_in(key)
    if _session_admin() is None:
        return _page("dashboard_login.html")
    return _page("dashboard.html")


def _log_in(key: str):
    if not ext.settings().secret_key:
        raise ApiError(503, "The dashboard needs SECRET_KEY in the gateway's environment.")
    admin = _admin_key(key) if key.strip() else None
    if admin is None:
        return _page("dashboard_login.html", 401, error="That is not an admin key.")
    session.clear()
    session[SESSION_KEY] = admin.id
    # 303: the key leaves the address bar (and the history) at once.
    return redirect(url_for("dashboard.dashboard"), 303)


@bp.post("/dashboard/logout")
def log_out():
    if current_app.secret_key:
        session.clear()
    return redirect(url_for("dashboard.dashboard"), 303)


@bp.get("/admin/dashboard.json")
def dashboard_json():
    if "Authorization" in request.headers:
        authenticate(role="admin")
    elif _session_admin() is None:
        raise ApiError(401, "Log in at /dashboard, or send an admin bearer key.",
                       {"WWW-Authenticate": "Bearer"})
    return snapshot()


def snapshot() -> dict:
    database = ext.session()
    by_status: dict[str, int] = {}
    for _, _, status, count in stats.job_counts(database):
        by_status[status] = by_status.get(status, 0) + count
    redis = ext.redis()
    return {
        "at": datetime.now(timezone.utc).isoformat(),
        "poll_seconds": POLL_SECONDS,
        "jobs": {"by_status": by_status, "total": sum(by_status.values())},
        "per_minute": stats.jobs_per_minute(database),
        "queues": [{"name": name, "depth": depth}
                   for name, depth in stats.queue_depths(redis, ext.catalog()).items()],
        "workers": [_worker_view(w) for w in sorted(live_workers(redis), key=lambda w: w["id"])],
        "failures": stats.recent_failures(database),
        "payments": {k: str(v) for k, v in stats.payments(
            ext.sessions(), ext.settings().payments_unpaid_seconds).items()},
    }


def _worker_view(worker: dict) -> dict:
    models = worker.get("models", [])
    return {
        "id": worker["id"],
        "host": worker.get("host"),
        "device": worker.get("device"),
        "gpu": worker.get("gpu"),
        "gpu_stats": worker.get("gpu_stats"),
        "busy": worker.get("busy"),
        "models": [{"pipeline": m["pipeline"], "model_id": m["model_id"], "ready": m["ready"],
                    "warm": m.get("warm"), "bytes": m.get("bytes", 0)} for m in models],
        "models_bytes": sum(m.get("bytes", 0) for m in models if m.get("ready")),
        "budget_bytes": worker.get("budget_bytes"),
        "age_seconds": round(max(0.0, datetime.now(timezone.utc).timestamp()
                                 - worker.get("at", 0)), 1),
    }
