"""One Redis subscriber per gateway process for all of its waiting clients.

Synchronous requests, SSE streams and streamed chat answers wait for a job's events.
Each used to open its own pub/sub connection and poll the database every 2 s; a
thousand waiting clients cost a thousand connections and 500 queries a second. Here one
connection listens to every job's channel (a pattern) and hands each event to the
clients that follow its job, and one query every `recheck_seconds` asks the database
which followed jobs are final, for the events pub/sub lost (Redis restarting, a
recorder killed between its commit and its publish). A follower hears of its job's end
either way, within `recheck_seconds` at worst.

The same connection carries notices for the process's caches (watchers: the API key
cache hears of revoked keys), so that a cache hit needs no round trip.

The hub starts on the process's first request (after gunicorn forked it), on threads:
under gevent's gunicorn worker those are greenlets."""

import json
import logging
import os
import queue
import threading
import time
from typing import Callable, Iterable, Protocol

from redis import exceptions as redis_errors
from sqlalchemy import select

from app.store.tables import Job
from tasks.live import is_final_event
from tasks.names import JOB_CHANNELS, job_of_channel
from tasks.status import FINAL_STATUSES

log = logging.getLogger(__name__)

# job ids -> {job id: final status} for those of them that are final in the database
FinalAmong = Callable[[list[str]], dict[str, str]]


class Watcher(Protocol):
    """A cache kept fresh by notices on its channel."""

    channel: str

    def listening(self, subscribed: bool) -> None:
        """The hub (re)subscribed to the channel, or lost it (notices missed between)."""

    def heard(self) -> None:
        """A notice on the channel."""


class Follow:
    """One client's view of one job's events, from subscription to close()."""

    def __init__(self, hub: "Hub", job_id: str):
        self.hub, self.job_id = hub, job_id
        self._events: queue.SimpleQueue = queue.SimpleQueue()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.hub._forget(self)

    def put(self, event: dict) -> None:
        self._events.put(event)

    def next(self, timeout: float) -> dict | None:
        """The next event within `timeout` seconds, or None. Every follower of the job
        gets the same dict: read it, never change it."""
        try:
            return self._events.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def wait_final(self, timeout: float) -> dict | None:
        """The job's final event once it is final (its event, or the database said so),
        None when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.next(left)
            if event is not None and is_final_event(event):
                return event
        return None


class Hub:
    """The process's subscriber: follow(job) for each waiting client."""

    def __init__(self, redis, final_among: FinalAmong, recheck_seconds: float = 2.0,
                 subscribe_wait_seconds: float = 5.0, watchers: Iterable[Watcher] = ()):
        self.redis, self.final_among = redis, final_among
        self._watchers = {watcher.channel: watcher for watcher in watchers}
        self.recheck_seconds = recheck_seconds
        self.subscribe_wait_seconds = subscribe_wait_seconds
        self._follows: dict[str, set[Follow]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._subscriptions = 0
        self._pid: int | None = None

    def follow(self, job_id: str) -> Follow:
        """Follows the job from now on. Call it before enqueueing the job or taking a
        snapshot of it, so that no event falls in between."""
        self.start()
        follow = Follow(self, job_id)
        with self._lock:
            self._follows.setdefault(job_id, set()).add(follow)
        # Events before the subscription are not heard: wait for it (the first request
        # of a process, or while Redis restarts); the database recheck covers the rest.
        self._subscribed.wait(self.subscribe_wait_seconds)
        return follow

    def _forget(self, follow: Follow) -> None:
        with self._lock:
            follows = self._follows.get(follow.job_id)
            if follows is not None:
                follows.discard(follow)
                if not follows:
                    del self._follows[follow.job_id]

    def _deliver(self, job_id: str, event: dict) -> None:
        with self._lock:
            follows = list(self._follows.get(job_id, ()))
        for follow in follows:
            follow.put(event)

    # -- the process's threads ----------------------------------------------------------

    def start(self) -> None:
        """Starts this process's listener, once (a forked child starts its own)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a forked child starts its own
            self._subscribed.clear()
            self._subscriptions = 0
            for target in (self._listen, self._recheck):
                threading.Thread(target=target, name=f"hub-{target.__name__[1:]}",
                                 daemon=True).start()

    def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                pubsub.psubscribe(JOB_CHANNELS)
                if self._watchers:
                    pubsub.subscribe(*self._watchers)
                for message in pubsub.listen():
                    self._on_message(message)
            except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
                log.warning("the hub lost its subscription (%s); resubscribing", exc)
            except Exception:
                log.exception("the hub's listener failed; resubscribing")
            finally:
                self._subscribed.clear()
                for watcher in self._watchers.values():
                    watcher.listening(False)
                pubsub.close()
            time.sleep(0.5)

    def _on_message(self, message: dict) -> None:
        if message["type"] in ("subscribe", "message"):
            watcher = self._watchers.get(_text(message["channel"]))
            if watcher is None:
                return
            if message["type"] == "subscribe":
                watcher.listening(True)
            else:
                watcher.heard()
            return
        if message["type"] == "psubscribe":
            # Every subscription but the process's first (redis-py reconnecting on its
            # own, or this loop after an error) follows a gap whose events were lost:
            # ask the database now rather than at the next tick.
            self._subscriptions += 1
            self._subscribed.set()
            if self._subscriptions > 1:
                self._recheck_now()
            return
        if message["type"] != "pmessage":
            return
        job_id = job_of_channel(_text(message["channel"]))
        with self._lock:
            if job_id not in self._follows:
                return  # no one here follows it: not even parsed
        try:
            event = json.loads(message["data"])
        except ValueError:
            log.warning("an event of job %s is not JSON; dropped", job_id)
            return
        self._deliver(job_id, event)

    def _recheck(self) -> None:
        while True:
            time.sleep(self.recheck_seconds)
            try:
                self._recheck_now()
            except Exception:  # never let the thread die: followers depend on it
                log.exception("the hub's recheck failed")

    def _recheck_now(self) -> None:
        with self._lock:
            job_ids = list(self._follows)
        if not job_ids:
            return
        try:
            final = self.final_among(job_ids)
        except Exception as exc:  # the database away: the next tick asks again
            log.warning("the hub could not read which followed jobs are final: %s", exc)
            return
        for job_id, status in final.items():
            self._deliver(job_id, {"event": status})


def final_among_jobs(sessions, chunk: int = 1000) -> FinalAmong:
    """final_among for the hub, reading the jobs table through `sessions`."""

    def final_among(job_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with sessions() as session:
            for part in _chunks(job_ids, chunk):
                rows = session.execute(select(Job.id, Job.status).where(
                    Job.id.in_(part), Job.status.in_(FINAL_STATUSES)))
                found.update({job_id: status for job_id, status in rows})
        return found

    return final_among


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
