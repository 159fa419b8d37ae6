"""A job's live state in Redis, written by workers and the recorder, read by the gateway:
pub/sub events for followers and a hash with the latest progress."""

import json

from tasks import names

PROGRESS_TTL_SECONDS = 24 * 3600


def publish(redis, job_id: str, event: dict) -> None:
    redis.publish(names.job_channel(job_id), json.dumps(event))


def set_progress(redis, job_id: str, step: int, total: int) -> float:
    fraction = round(step / total, 4) if total else 1.0
    key = names.job_progress_key(job_id)
    with redis.pipeline() as pipe:
        pipe.hset(key, mapping={"step": step, "total": total, "progress": fraction})
        pipe.expire(key, PROGRESS_TTL_SECONDS)
        pipe.execute()
    return fraction


def read_progress(redis, job_id: str) -> dict | None:
    raw = redis.hgetall(names.job_progress_key(job_id))
    if not raw:
        return None
    return {k.decode(): float(v) for k, v in raw.items()}
