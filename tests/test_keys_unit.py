"""The in-process API key cache (app/api/keys.py): when a hit may skip Redis, and how a
revoke's notice empties it. Redis is a stub here: only the cache's logic is tested
(test_keys_and_limits.py revokes a key through the real hub)."""

from app.api.keys import Key, KeyCache

KEY = Key(id=1, role="user", rate_limit_per_minute=None, daily_job_quota=None)


class GenerationOnly:
    """Redis as the cache reads it: KEYS_GENERATION, counting the reads."""

    def __init__(self):
        self.generation, self.reads = b"1", 0

    def get(self, name):
        self.reads += 1
        return self.generation


class Loads:
    def __init__(self, key=KEY, during=None):
        self.key, self.during, self.count = key, during, 0

    def __call__(self, key_hash):
        self.count += 1
        if self.during is not None:
            self.during()
        return self.key


def test_while_listening_a_hit_reads_nothing_and_a_notice_empties_the_cache():
    cache, redis, load = KeyCache(), GenerationOnly(), Loads()
    cache.listening(True)
    assert cache.lookup(redis, "h", load) == KEY and load.count == 1
    reads = redis.reads
    assert cache.lookup(redis, "h", load) == KEY
    assert (redis.reads, load.count) == (reads, 1)
    cache.heard()  # a revoke
    load.key = None
    assert cache.lookup(redis, "h", load) is None and load.count == 2


def test_not_listening_each_hit_checks_the_generation():
    cache, redis, load = KeyCache(), GenerationOnly(), Loads()
    assert cache.lookup(redis, "h", load) == KEY
    assert cache.lookup(redis, "h", load) == KEY and load.count == 1 and redis.reads == 2
    redis.generation = b"2"  # a revoke while this process heard nothing
    load.key = None
    assert cache.lookup(redis, "h", load) is None


def test_losing_the_subscription_falls_back_to_the_generation():
    cache, redis, load = KeyCache(), GenerationOnly(), Loads()
    cache.listening(True)
    cache.lookup(redis, "h", load)
    cache.listening(False)  # notices may be missed from now on: nothing cached is kept
    reads = redis.reads
    cache.lookup(redis, "h", load)
    cache.lookup(redis, "h", load)
    assert load.count == 2 and redis.reads == reads + 2


def test_a_key_read_before_a_notice_is_not_kept_after_it():
    cache, redis = KeyCache(), GenerationOnly()
    cache.listening(True)
    # The revoke's notice arrives while the key (read before the revoke) is being loaded.
    racing = Loads(during=cache.heard)
    assert cache.lookup(redis, "h", racing) == KEY
    after = Loads(key=None)
    assert cache.lookup(redis, "h", after) is None and after.count == 1


def test_entries_expire():
    cache, redis, load = KeyCache(ttl_seconds=0.0), GenerationOnly(), Loads()
    cache.listening(True)
    cache.lookup(redis, "h", load)
    cache.lookup(redis, "h", load)
    assert load.count == 2
