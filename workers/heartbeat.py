"""A worker's heartbeat: what it is and holds, in Redis with a TTL, so the gateway
learns what exists with no configuration and forgets a worker that stops beating."""

import json
import logging
import threading
import time

from tasks import names

log = logging.getLogger(__name__)

# A worker missing three beats has dropped out.
MISSED_BEATS = 3


class Heartbeat:
    def __init__(self, redis, operator_id: int, worker_id: str, describe,
                 interval: float = 5.0):
        self.redis = redis
        self.key = names.worker_key(operator_id, worker_id)
        self.worker_id = worker_id
        self.describe = describe  # () -> dict, called at every beat
        self.interval = interval
        self._stop = threading.Event()
        # The beat thread and the job thread both beat: one at a time, so that an older
        # description can never overwrite a newer one.
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def beat(self, then=None) -> list:
        """Writes the description now. `then(pipe)`: commands to send after it in the
        same round trip (a job's start or end); their replies are returned."""
        with self._lock:
            pipe = self.redis.pipeline(transaction=False)
            if not self._stop.is_set():  # stopped: the key is gone and must stay gone
                state = dict(self.describe(), id=self.worker_id, at=time.time(),
                             interval=self.interval)
                ttl = max(1, int(self.interval * MISSED_BEATS))
                pipe.set(self.key, json.dumps(state), ex=ttl)
            beats = len(pipe)
            if then is not None:
                then(pipe)
            return pipe.execute()[beats:] if len(pipe) else []

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        try:
            self.redis.delete(self.key)
        except Exception:  # Redis already gone: the key expires by itself
            log.warning("could not remove heartbeat of %s", self.worker_id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # Redis away for a moment: try again next beat
                log.warning("heartbeat failed", exc_info=True)

