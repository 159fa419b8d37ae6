"""A job's live state in Redis, written by the gateway's recorder from what the job's
worker reported, read by the gateway's HTTP side: pub/sub events for followers and a
hash with the latest progress."""

import json
import time

from redis import exceptions as redis_errors

from tasks.names import job_channel, job_progress_key
from tasks.status import FINAL_STATUSES, PROGRESS

PROGRESS_TTL_SECONDS = 24 * 3600


def publish(redis, job_id: str, event: dict) -> None:
    redis.publish(job_channel(job_id), json.dumps(event))


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


class Follower:
    """A subscription to one job's events. Subscribe before enqueueing or before taking
    a snapshot of the job, so that no event falls in between."""

    def __init__(self, redis, job_id: str):
        self.pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(job_channel(job_id))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.pubsub.close()

    def next(self, timeout: float) -> dict | None:
        """The next event within `timeout`, or None. Redis away (restarting): None, so
        that the caller asks the database; the subscription comes back with Redis."""
        try:
            message = self.pubsub.get_message(timeout=timeout)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            return None
        return json.loads(message["data"]) if message else None

    def wait_final(self, timeout: float, is_final) -> bool:
        """Waits for a final event; every few seconds also asks is_final() (the database)
        in case an event was lost while Redis reconnected. True when the job ended."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.next(min(left, 2.0))
            if event is not None and is_final_event(event):
                return True
            if event is None and is_final():
                return True
        return is_final()


def is_final_event(event: dict) -> bool:
    return event.get("event") in FINAL_STATUSES

