"""The admin API (admin keys only)."""

import json

from flask import Blueprint
from sqlalchemy import select

from app import extensions as ext
from app.api.auth import authenticate
from app.api.errors import ApiError
from app.store.tables import Operator
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


@bp.get("/operators")
def operators():
    """Every operator: its address, whether it is revoked, its live workers, and the
    messages of its the recorder refused, by reason."""
    refused: dict[int, dict[str, int]] = {}
    for field, count in ext.redis().hgetall(names.OPERATOR_REFUSALS).items():
        operator_id, reason = field.decode().split(":", 1)
        refused.setdefault(int(operator_id), {})[reason] = int(count)
    live: dict[int, int] = {}
    for worker in live_workers(ext.redis()):
        live[worker["operator"]] = live.get(worker["operator"], 0) + 1
    rows = ext.session().scalars(select(Operator).order_by(Operator.id))
    return {"operators": [{
        "id": op.id, "name": op.name, "address": op.address,
        "revoked_at": op.revoked_at.isoformat() if op.revoked_at else None,
        "live_workers": live.get(op.id, 0), "refused": refused.get(op.id, {}),
    } for op in rows]}


@bp.get("/events/parked")
def parked_events():
    """Messages the recorder could not apply after retrying them, newest first: what,
    from which operator, and why (their bodies stay in Redis for a redrive)."""
    entries = ext.redis().xrevrange(names.PARKED_EVENTS, count=200)
    return {"parked": [{
        "id": _text(entry_id), "stream": _text(fields.get(b"stream", b"")),
        "kind": _text(fields.get(b"kind", b"")), "error": _text(fields.get(b"error", b"")),
        "at": float(fields.get(b"at", 0)),
    } for entry_id, fields in entries]}


@bp.post("/events/parked/<entry_id>/redrive")
def redrive(entry_id: str):
    """Puts a parked message back on its operator's stream (it is still signed), for the
    recorder to apply once what failed is mended."""
    found = ext.redis().xrange(names.PARKED_EVENTS, entry_id, entry_id)
    if not found:
        raise ApiError(404, "No such parked message.")
    fields = dict(found[0][1])
    stream = _text(fields.pop(b"stream"))
    for name in (b"entry", b"error", b"at"):
        fields.pop(name, None)
    with ext.redis().pipeline() as pipe:
        pipe.xadd(stream, fields)
        pipe.xdel(names.PARKED_EVENTS, entry_id)
        pipe.execute()
    return {"redriven": entry_id, "stream": stream}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
