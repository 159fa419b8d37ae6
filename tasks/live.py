"""A job's live state in Redis, written by workers and the recorder, read by the gateway:
pub/sub events for followers and a hash with the latest progress."""

import json

from tasks import control, names

PROGRESS_TTL_SECONDS = 24 * 3600


def publish(redis, job_id: str, event: dict) -> None:
    redis.publish(names.job_channel(job_id), json.dumps(event))


def report_progress(redis, job_id: str, step: int, total: int) -> str | None:
    """Stores and publishes a step, and returns the job's control state (canceled?):
    one round trip per step."""
    fraction = round(step / total, 4) if total else 1.0
    key = names.job_progress_key(job_id)
    event = {"event": "progress", "step": step, "total": total, "progress": fraction}
    with redis.pipeline() as pipe:
        pipe.hset(key, mapping={"step": step, "total": total, "progress": fraction})
        pipe.expire(key, PROGRESS_TTL_SECONDS)
        pipe.publish(names.job_channel(job_id), json.dumps(event))
        pipe.hget(control.ctl_key(job_id), "state")
        state = pipe.execute()[-1]
    return state.decode() if state else None


def read_progress(redis, job_id: str) -> dict | None:
    raw = redis.hgetall(names.job_progress_key(job_id))
    if not raw:
        return None
    return {k.decode(): float(v) for k, v in raw.items()}
