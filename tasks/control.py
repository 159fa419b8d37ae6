"""A job's control record in Redis, the one place gateway, workers and controller agree
on whether a job may run: which attempt is current, and whether it was canceled or is
done. A worker claims a job before it runs it; a stale or canceled delivery is dropped.

Also the registry of running jobs, from which the controller re-queues the job of a
worker that died (its heartbeat expired) without waiting for Redis' visibility timeout."""

import json

QUEUED, RUNNING, DONE, CANCELED = "queued", "running", "done", "canceled"
RUNNING_KEY = "jobs:running"
CTL_TTL_SECONDS = 7 * 24 * 3600


def ctl_key(job_id: str) -> str:
    return f"job:{job_id}:ctl"


# Claim atomically: only the current attempt of a job still queued may run.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
local attempt = redis.call('HGET', KEYS[1], 'attempt')
if not state then return 'unknown' end
if state ~= 'queued' then return state end
if attempt ~= ARGV[1] then return 'stale' end
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 'ok'
"""

# Cancel unless already done; returns the state it found.
_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'unknown' end
if state == 'done' or state == 'canceled' then return state end
redis.call('HSET', KEYS[1], 'state', 'canceled')
return state
"""

# Give a lost job its next attempt, unless it was finished or canceled meanwhile.
_RETRY = """
local state = redis.call('HGET', KEYS[1], 'state')
redis.call('HDEL', KEYS[2], ARGV[1])
if state ~= 'running' then return -1 end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'queued')
return attempt
"""


_RELEASE = """
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued')
return 1
"""


def init(redis, job_id: str) -> None:
    key = ctl_key(job_id)
    with redis.pipeline() as pipe:
        pipe.hset(key, mapping={"state": QUEUED, "attempt": 1})
        pipe.expire(key, CTL_TTL_SECONDS)
        pipe.execute()


def claim(redis, job_id: str, attempt: int, worker: str, message: dict) -> str:
    """'ok' when this delivery may run; else why not (done, canceled, stale, running)."""
    running = json.dumps({"worker": worker, "attempt": attempt, "message": message})
    result = redis.eval(_CLAIM, 2, ctl_key(job_id), RUNNING_KEY, str(attempt), worker,
                        job_id, running)
    return result.decode() if isinstance(result, bytes) else result


def release(redis, job_id: str) -> bool:
    """Hands a claimed job back (a worker without room for it): queued again, same
    attempt. False when it was canceled meanwhile."""
    return redis.eval(_RELEASE, 2, ctl_key(job_id), RUNNING_KEY, job_id) == 1


def finish(redis, job_id: str) -> None:
    with redis.pipeline() as pipe:
        pipe.hset(ctl_key(job_id), "state", DONE)
        pipe.hdel(RUNNING_KEY, job_id)
        pipe.execute()


def cancel(redis, job_id: str) -> str:
    result = redis.eval(_CANCEL, 1, ctl_key(job_id))
    return result.decode() if isinstance(result, bytes) else result


def state(redis, job_id: str) -> str | None:
    value = redis.hget(ctl_key(job_id), "state")
    return value.decode() if value else None


def retry(redis, job_id: str) -> int:
    """The next attempt's number, or -1 when the job no longer needs one."""
    return int(redis.eval(_RETRY, 2, ctl_key(job_id), RUNNING_KEY, job_id))


def running(redis) -> dict[str, dict]:
    return {k.decode(): json.loads(v) for k, v in redis.hgetall(RUNNING_KEY).items()}
