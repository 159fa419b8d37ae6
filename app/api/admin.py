"""The admin API (admin keys only)."""

import json

from flask import Blueprint

from app import extensions as ext
from app.api.auth import authenticate
from tasks import names
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


@bp.get("/placement")
def placement():
    """The controller's recent decisions (newest first) and where each model is now."""
    redis = ext.redis()
    decisions = [json.loads(raw) for raw in redis.lrange(names.PLACEMENT_LOG, 0, 99)]
    held: dict[str, list[str]] = {}
    for worker in live_workers(redis):
        for model in worker.get("models", []):
            if model["ready"]:
                held.setdefault(f"{model['pipeline']}:{model['model_id']}", []).append(
                    worker["id"])
    return {"decisions": decisions, "models": held}
