"""Per-key limits kept in Redis, shared by every gateway: a rate of requests per minute
and a quota of jobs per day. Past either, a 429 with Retry-After."""

import time
from datetime import datetime, timedelta, timezone

from app.api.errors import ApiError
from app.store.tables import ApiKey
from tasks.names import daily_quota_key, rate_window_key


def check_rate(redis, key: ApiKey, default_per_minute: int) -> None:
    """A fixed one-minute window per key: simple, and exact enough for abuse control."""
    limit = key.rate_limit_per_minute or default_per_minute
    window = int(time.time() // 60)
    counter = rate_window_key(key.id, window)
    with redis.pipeline() as pipe:
        pipe.incr(counter)
        pipe.expire(counter, 120)
        count, _ = pipe.execute()
    if count > limit:
        retry = 60 - int(time.time() % 60)
        raise ApiError(429, f"Rate limit of {limit} requests a minute reached.",
                       {"Retry-After": str(max(1, retry))})


def _today_key(key: ApiKey) -> str:
    return daily_quota_key(key.id, f"{datetime.now(timezone.utc):%Y-%m-%d}")


def _seconds_to_midnight() -> int:
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


def check_quota(redis, key: ApiKey) -> None:
    if key.daily_job_quota is None:
        return
    used = int(redis.get(_today_key(key)) or 0)
    if used >= key.daily_job_quota:
        raise ApiError(429, f"Daily quota of {key.daily_job_quota} jobs reached.",
                       {"Retry-After": str(_seconds_to_midnight())})


def count_job(redis, key: ApiKey) -> None:
    if key.daily_job_quota is None:
        return
    with redis.pipeline() as pipe:
        pipe.incr(_today_key(key))
        pipe.expire(_today_key(key), 2 * 24 * 3600)
        pipe.execute()
