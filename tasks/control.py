"""A job's control record in Redis, the one place gateway, workers and controller agree
on whether a job may run: which attempt is current, and its status (tasks/status.py). A
worker claims a job before it runs it; a stale or canceled delivery is dropped.

Also the registry of running jobs, from which the controller re-queues the job of a
worker that died (its heartbeat expired) without waiting for Redis' visibility timeout."""

import json

from tasks.names import RUNNING_JOBS, job_control_key
from tasks.status import JobStatus

CONTROL_TTL_SECONDS = 7 * 24 * 3600

# Claim atomically: only the current attempt of a job still queued may run.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
local attempt = redis.call('HGET', KEYS[1], 'attempt')
if not state then return 'unknown' end
if state ~= 'queued' then return state end
if attempt ~= ARGV[1] then return 'stale' end
redis.call('HSET', KEYS[1], 'state', 'started', 'worker', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 'ok'
"""

# Cancel unless already final; returns the state it found.
_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'unknown' end
if state ~= 'queued' and state ~= 'started' then return state end
redis.call('HSET', KEYS[1], 'state', 'canceled')
return state
"""

# Give a lost job its next attempt, unless it was finished or canceled meanwhile.
_RETRY = """
local state = redis.call('HGET', KEYS[1], 'state')
redis.call('HDEL', KEYS[2], ARGV[1])
if state ~= 'started' then return -1 end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'queued')
return attempt
"""

_RELEASE = """
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'state') ~= 'started' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued')
return 1
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def init(redis, job_id: str) -> None:
    key = job_control_key(job_id)
    with redis.pipeline() as pipe:
        pipe.hset(key, mapping={"state": JobStatus.QUEUED, "attempt": 1})
        pipe.expire(key, CONTROL_TTL_SECONDS)
        pipe.execute()


def claim(redis, job_id: str, attempt: int, worker: str, message: dict) -> str:
    """'ok' when this delivery may run; else why not (a final status, 'started' when
    another delivery runs it, 'stale', 'unknown')."""
    running = json.dumps({"worker": worker, "attempt": attempt, "message": message})
    return _text(redis.eval(_CLAIM, 2, job_control_key(job_id), RUNNING_JOBS, str(attempt),
                            worker, job_id, running))


def release(redis, job_id: str) -> bool:
    """Hands a claimed job back (a worker without room for it): queued again, same
    attempt. False when it was canceled meanwhile."""
    return redis.eval(_RELEASE, 2, job_control_key(job_id), RUNNING_JOBS, job_id) == 1


def finish(redis, job_id: str, status: JobStatus) -> None:
    with redis.pipeline() as pipe:
        pipe.hset(job_control_key(job_id), "state", status)
        pipe.hdel(RUNNING_JOBS, job_id)
        pipe.execute()


def cancel(redis, job_id: str) -> str:
    return _text(redis.eval(_CANCEL, 1, job_control_key(job_id)))


def state(redis, job_id: str) -> str | None:
    value = redis.hget(job_control_key(job_id), "state")
    return _text(value) if value else None


def retry(redis, job_id: str) -> int:
    """The next attempt's number, or -1 when the job no longer needs one."""
    return int(redis.eval(_RETRY, 2, job_control_key(job_id), RUNNING_JOBS, job_id))


def running(redis) -> dict[str, dict]:
    return {_text(k): json.loads(v) for k, v in redis.hgetall(RUNNING_JOBS).items()}
