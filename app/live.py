"""Following a job's live events (tasks/live.py is what writes them)."""

import json
import time

from tasks import names

FINAL_EVENTS = frozenset({"succeeded", "failed", "canceled", "aborted"})


class Follower:
    """A subscription to one job's events. Subscribe before enqueueing or before taking
    a snapshot of the job, so that no event falls in between."""

    def __init__(self, redis, job_id: str):
        self.pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(names.job_channel(job_id))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.pubsub.close()

    def next(self, timeout: float) -> dict | None:
        message = self.pubsub.get_message(timeout=timeout)
        return json.loads(message["data"]) if message else None

    def wait_final(self, timeout: float, is_final) -> bool:
        """Waits for a final event; every few seconds also asks is_final() (the database)
        in case an event was lost while Redis reconnected. True when the job ended."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.next(min(left, 2.0))
            if event is not None and event.get("event") in FINAL_EVENTS:
                return True
            if event is None and is_final():
                return True
        return is_final()
