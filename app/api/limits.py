"""Per-key limits kept in Redis, shared by every gateway: a rate of requests per minute,
a quota of jobs per day, and a fair share of jobs in flight (queued or running). Past
any, a 429 with Retry-After. The journal takes a job out of its key's share when it
ends; the controller's sweep takes out what a crash left in."""

import time
from datetime import datetime, timedelta, timezone

from app.api.errors import ApiError
from app.api.keys import Key
from tasks.names import daily_quota_key, in_flight_key, rate_window_key


def check_rate(execute, key: Key, default_per_minute: int) -> None:
    """A fixed one-minute window per key: simple, and exact enough for abuse control.
    `execute(ask)` sends the commands ask(pipe) adds (app/shared_pipeline.py)."""
    limit = key.rate_limit_per_minute or default_per_minute
    window = int(time.time() // 60)
    counter = rate_window_key(key.id, window)

    def ask(pipe) -> None:
        pipe.incr(counter)
        pipe.expire(counter, 120)

    count, _ = execute(ask)
    if count > limit:
        retry = 60 - int(time.time() % 60)
        raise ApiError(429, f"Rate limit of {limit} requests a minute reached.",
                       {"Retry-After": str(max(1, retry))})


def _today_key(key: Key) -> str:
    return daily_quota_key(key.id, f"{datetime.now(timezone.utc):%Y-%m-%d}")


def _seconds_to_midnight() -> int:
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


# One script, so that two requests of one key cannot both pass a check the other one then
# makes false. KEYS: the key's jobs today, its jobs in flight (job id -> when admitted).
# ARGV: daily quota (-1: none), fair share, job id, now, seconds the day's count is kept.
_ADMIT = """
local quota = tonumber(ARGV[1])
if quota >= 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= quota then
  return 'quota'
end
local flying = redis.call('ZCARD', KEYS[2])
if flying >= tonumber(ARGV[2]) then return 'share:' .. flying end
if quota >= 0 then
  redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
return 'ok'
"""


def ask_admit_job(pipe, key: Key, job_id: str, fair_share: int) -> None:
    """Adds to `pipe` the count of the job against the key's daily quota and its fair
    share of jobs in flight, made atomically (one script) only when neither is used up;
    admitted() reads its reply."""
    quota = key.daily_job_quota if key.daily_job_quota is not None else -1
    pipe.eval(_ADMIT, 2, _today_key(key), in_flight_key(key.id), quota, fair_share, job_id,
              time.time(), 2 * 24 * 3600)


def admitted(key: Key, verdict) -> None:
    """Nothing when ask_admit_job counted the job; else a 429 with Retry-After."""
    verdict = verdict.decode() if isinstance(verdict, bytes) else verdict
    if verdict == "quota":
        raise ApiError(429, f"Daily quota of {key.daily_job_quota} jobs reached.",
                       {"Retry-After": str(_seconds_to_midnight())})
    if verdict.startswith("share:"):
        raise FairShareUsed(verdict.split(":")[1])


class FairShareUsed(ApiError):
    def __init__(self, flying: str):
        super().__init__(429, f"This key has {flying} jobs queued or running, its limit; "
                              "wait for some to finish.", {"Retry-After": "5"})


def job_ended(redis, api_key_id: int, job_id: str) -> None:
    """The job is final: out of its key's share."""
    redis.zrem(in_flight_key(api_key_id), job_id)


def withdraw_job(redis, key: Key, job_id: str) -> None:
    """The job ask_admit_job counted was not made after all (a twin request made it first,
    or it could not be recorded or queued)."""
    with redis.pipeline() as pipe:
        if key.daily_job_quota is not None:
            pipe.decr(_today_key(key))
        pipe.zrem(in_flight_key(key.id), job_id)
        pipe.execute()
