"""The admin API (admin keys only)."""

from flask import Blueprint

from app import extensions as ext
from app.auth import authenticate
from tasks.discovery import live_workers

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def admins_only():
    authenticate(role="admin")


@bp.get("/workers")
def workers():
    """Every live worker as its heartbeat describes it: host, GPU, models (with load
    times and, for a model that failed to load, the cause), the job it is running."""
    found = sorted(live_workers(ext.redis()), key=lambda w: w["id"])
    return {"workers": found}
