"""Following a job's live events (see tasks/live.py for what writes them)."""

import json
import time
from contextlib import contextmanager

from tasks import names

FINAL_EVENTS = frozenset({"succeeded", "failed", "canceled", "aborted"})


@contextmanager
def follow(redis, job_id: str):
    """Subscribes to a job's events. Subscribe before enqueueing, so no event is missed."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(names.job_channel(job_id))
    try:
        yield pubsub
    finally:
        pubsub.close()


def next_event(pubsub, timeout: float) -> dict | None:
    message = pubsub.get_message(timeout=timeout)
    return json.loads(message["data"]) if message else None


def wait_final(pubsub, timeout: float, is_final) -> bool:
    """Waits for a final event; every few seconds also asks is_final() (the database), in
    case an event was lost while Redis reconnected. True when the job ended in time."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = next_event(pubsub, min(left, 2.0))
        if event is not None and event.get("event") in FINAL_EVENTS:
            return True
        if event is None and is_final():
            return True
    return is_final()

