"""API keys as a request sees them, cached in each gateway process: a revoke reaches
every process through Redis at once."""

import time
from dataclasses import dataclass

from redis import exceptions as redis_errors

from tasks.names import KEYS_CHANGED, KEYS_GENERATION


@dataclass(frozen=True)
class Key:
    """What a request needs of its key: a snapshot that outlives the session it was
    read in."""

    id: int
    role: str
    rate_limit_per_minute: int | None
    daily_job_quota: int | None

    @classmethod
    def of(cls, row) -> "Key":
        """The snapshot of an ApiKey row."""
        return cls(row.id, row.role, row.rate_limit_per_minute, row.daily_job_quota)


class KeyCache:
    """Live keys by hash, in process, each for at most `ttl_seconds`. Unknown keys are not
    kept: a new key works at once. A revoke (keys_changed) reaches the cache two ways:
    - while the process's hub listens to KEYS_CHANGED (app/hub.py calls listening() and
      heard()), its notice empties the cache, and a hit costs nothing;
    - otherwise each hit reads KEYS_GENERATION, which every revoke bumps, and counts
      only if it was read under the same generation."""

    channel = KEYS_CHANGED

    def __init__(self, ttl_seconds: float = 30.0):
        self.ttl_seconds = ttl_seconds
        self._keys: dict[str, tuple[Key, bytes | None, float]] = {}
        self._listening = False
        # Bumped whenever the cache is emptied: a key read from the database before a
        # revoke's notice is not kept after it.
        self._epoch = 0

    @property
    def hears_revokes(self) -> bool:
        return self._listening

    def listening(self, subscribed: bool) -> None:
        """The hub (re)subscribed to the channel, or lost it: notices may have been
        missed in between."""
        self._listening = subscribed
        self._forget_all()

    def heard(self) -> None:
        """A revoke's notice."""
        self._forget_all()

    def _forget_all(self) -> None:
        self._epoch += 1
        self._keys.clear()

    def lookup(self, redis, key_hash: str, load) -> Key | None:
        entry = self._keys.get(key_hash)
        fresh = entry is not None and entry[2] > time.monotonic()
        if fresh and self._listening:
            return entry[0]
        try:
            generation = redis.get(KEYS_GENERATION)
        except redis_errors.RedisError:
            return load(key_hash)  # whether a key was revoked cannot be told: ask
        if fresh and entry[1] == generation:
            return entry[0]
        epoch = self._epoch
        key = load(key_hash)
        if key is None:
            self._keys.pop(key_hash, None)
        elif epoch == self._epoch:
            self._keys[key_hash] = (key, generation, time.monotonic() + self.ttl_seconds)
        return key


def keys_changed(redis) -> None:
    """Every gateway process forgets the keys it holds (after a revoke is committed)."""
    redis.incr(KEYS_GENERATION)
    redis.publish(KEYS_CHANGED, "1")
