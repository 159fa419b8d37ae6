"""Redis clients for every process, made one way: they retry a command whose connection
broke (a Redis restart, a failover), so a blip costs a moment, not an error."""

import redis as redis_lib
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


RETRIED = [redis_lib.ConnectionError, redis_lib.TimeoutError]


def redis_client(url: str, max_connections: int | None = None) -> redis_lib.Redis:
    """max_connections: a pool of at most that many, where a caller waits (5 s at most)
    for a free connection instead of opening one more."""
    options = {"retry": _retry(), "retry_on_error": RETRIED, "health_check_interval": 30}
    if not max_connections:
        return redis_lib.Redis.from_url(url, **options)
    pool = redis_lib.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                     timeout=5, **options)
    return redis_lib.Redis(connection_pool=pool)


def pipelined(redis, ask) -> list:
    """The replies to the commands ask(pipe) adds, in one round trip of their own (the
    gateway shares such round trips among its requests: app/shared_pipeline.py)."""
    with redis.pipeline(transaction=False) as pipe:
        ask(pipe)
        return pipe.execute() if pipe.command_stack else []


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=2, base=0.1), retries=5)
