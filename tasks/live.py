"""A job's live state in Redis, written by the gateway's recorder from what the job's
worker reported, read by the gateway's HTTP side: pub/sub events for followers (heard
through app/hub.py) and a hash with the latest progress."""

import json

from tasks.names import job_channel, job_progress_key
from tasks.status import FINAL_STATUSES, PROGRESS

PROGRESS_TTL_SECONDS = 24 * 3600


def publish(redis, job_id: str, event: dict) -> None:
    redis.publish(job_channel(job_id), json.dumps(event))


def publish_final(redis, job_id: str, status: str, record: dict, max_bytes: int) -> None:
    """A job's final event, carrying its record when the event fits in `max_bytes` (a long
    answer does not: its followers read the job)."""
    message = json.dumps({"event": status, "job": record})
    if len(message) > max_bytes:
        message = json.dumps({"event": status})
    redis.publish(job_channel(job_id), message)


def record_progress(redis, job_id: str, step: int, total: int,
                    chunks: list[dict] | None = None) -> None:
    """Stores and publishes a step, with the chunks of a streamed answer that came with
    it, in one round trip."""
    fraction = round(min(max(step / total, 0.0), 1.0), 4) if total else 1.0
    key = job_progress_key(job_id)
    event = {"event": PROGRESS, "step": step, "total": total, "progress": fraction}
    if chunks:
        event["chunks"] = chunks
    with redis.pipeline() as pipe:
        pipe.hset(key, mapping={"step": step, "total": total, "progress": fraction})
        pipe.expire(key, PROGRESS_TTL_SECONDS)
        pipe.publish(job_channel(job_id), json.dumps(event))
        pipe.execute()


def read_progress(redis, job_id: str) -> dict | None:
    raw = redis.hgetall(job_progress_key(job_id))
    if not raw:
        return None
    return {k.decode(): float(v) for k, v in raw.items()}


def is_final_event(event: dict) -> bool:
    return event.get("event") in FINAL_STATUSES

