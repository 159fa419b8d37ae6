"""API keys as a request sees them, cached in each gateway process: a revoke reaches
every process through Redis at once."""

import time
from dataclasses import dataclass

from redis import exceptions as redis_errors

from tasks.names import KEYS_GENERATION


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
    """Live keys by hash, in process. A revoke bumps KEYS_GENERATION (keys_changed), and
    an entry counts only under the generation it was read in; it also lasts at most
    `ttl_seconds`, for a change made around this code. Unknown keys are not kept: a new
    key works at once."""

    def __init__(self, ttl_seconds: float = 30.0):
        self.ttl_seconds = ttl_seconds
        self._keys: dict[str, tuple[Key, bytes | None, float]] = {}

    def lookup(self, redis, key_hash: str, load) -> Key | None:
        try:
            generation = redis.get(KEYS_GENERATION)
        except redis_errors.RedisError:
            return load(key_hash)  # whether a key was revoked cannot be told: ask
        entry = self._keys.get(key_hash)
        if entry is not None and entry[1] == generation and entry[2] > time.monotonic():
            return entry[0]
        key = load(key_hash)
        if key is None:
            self._keys.pop(key_hash, None)
        else:
            self._keys[key_hash] = (key, generation, time.monotonic() + self.ttl_seconds)
        return key


def keys_changed(redis) -> None:
    """Every gateway process forgets the keys it holds (after a revoke is committed)."""
    redis.incr(KEYS_GENERATION)
