"""Reading the workers' heartbeats: which workers are alive and what they hold."""

import functools
import json
import threading
import time

from tasks import names
from tasks.connections import pipelined


def live_workers(redis) -> list[dict]:
    """Every worker whose heartbeat has not expired, with the operator it belongs to:
    the key's, whatever the heartbeat says (an operator writes only its own keys)."""
    return read_workers(redis, worker_keys(redis))[0]


def worker_keys(redis) -> list[str]:
    """The heartbeats' keys: a scan of the whole keyspace."""
    return [key.decode() if isinstance(key, bytes) else key
            for key in redis.scan_iter(match=names.WORKER_KEY_PATTERN, count=500)]


def read_workers(redis, keys: list[str], then=None, execute=None) -> tuple[list[dict], list]:
    """The workers of those heartbeat keys that have not expired, with `then(pipe)`'s
    commands sent in the same round trip: (the workers, the replies to those commands).
    One round trip, or none when there is nothing to ask; `execute(ask)` makes it
    (default: connections.pipelined on `redis`)."""
    def ask(pipe) -> None:
        if keys:
            pipe.mget(keys)
        if then is not None:
            then(pipe)

    replies = (execute or functools.partial(pipelined, redis))(ask)
    beats = replies.pop(0) if keys else []
    workers = []
    for key, raw in zip(keys, beats):
        if raw:
            operator_id, worker_id = names.worker_of_key(key)
            workers.append({**json.loads(raw), "id": worker_id, "operator": operator_id})
    return workers, replies


class RecentWorkers:
    """live_workers() for a path that asks many times a second (every submission): the
    heartbeats are read fresh each time (one MGET: a busy worker is seen busy at once),
    but the keyspace is scanned for their keys at most every `max_age_seconds` per
    process, not on every request. A caller that found no worker for its job asks for
    a fresh scan (a worker that beat for the first time a moment ago) before refusing."""

    def __init__(self, max_age_seconds: float = 1.0):
        self.max_age_seconds = max_age_seconds
        self._lock = threading.Lock()
        self._keys: list[str] = []
        self._scanned_at = float("-inf")

    def get(self, redis, fresh: bool = False) -> list[dict]:
        return self.get_with(redis, None, fresh)[0]

    def get_with(self, redis, then, fresh: bool = False,
                 execute=None) -> tuple[list[dict], list]:
        """get(), with `then(pipe)`'s commands in the same round trip (made by
        `execute`, as read_workers): (the workers, the replies to those commands)."""
        asked_at = time.monotonic()
        with self._lock:  # one scan at a time; the others take what it found
            stale = asked_at - self._scanned_at > self.max_age_seconds
            if stale or (fresh and self._scanned_at < asked_at):
                self._keys, self._scanned_at = worker_keys(redis), time.monotonic()
            keys = self._keys
        return read_workers(redis, keys, then, execute)


def serves_warm(worker: dict, pipeline: str, model_id: str) -> bool:
    return any(m["pipeline"] == pipeline and m["model_id"] == model_id and m["ready"]
               for m in worker.get("models", []))


def loads_on_demand(worker: dict, pipeline: str) -> bool:
    return pipeline in worker.get("dynamic", [])
