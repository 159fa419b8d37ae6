"""Redis clients for every process, made one way: they retry a command whose connection
broke (a Redis restart, a failover), so a blip costs a moment, not an error."""

import redis as redis_lib
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def redis_client(url: str) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(
        url, retry=Retry(ExponentialBackoff(cap=2, base=0.1), retries=5),
        retry_on_error=[redis_lib.ConnectionError, redis_lib.TimeoutError],
        health_check_interval=30)
