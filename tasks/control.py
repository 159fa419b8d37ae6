"""A job's control record in Redis: the one arbiter of which attempt is current, who
claimed it, and the job's status (tasks/status.py). Cancel, a worker's start and finish,
the deadline, the time limit and the controller's reaper all go through the scripts
below, so the first to decide wins and the rest see its decision.

Only the gateway's processes write control records (an operator's Redis user may read
them, to skip a stale or canceled delivery and to stop a superseded run): a worker's
claim is its `started` event, which the recorder applies here once the event's signature
checks out. The first valid `started` of an attempt fixes who may finish it.

Also the registry of running jobs (names.RUNNING_JOBS: job id -> claimant), from which
the controller re-queues the job of a worker that is gone, whether or not a new process
took its name."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tasks.dispatch import Outgoing
from tasks.names import RUNNING_JOBS, job_control_key
from tasks.status import JobStatus

CONTROL_TTL_SECONDS = 7 * 24 * 3600

# Outcomes of the scripts besides a status: the call was applied (or was already, by the
# same claimant), or refused because another claimant holds the attempt, or because it
# is not the current attempt, or because no such job exists.
OK, CLAIMED, STALE, UNKNOWN = "ok", "claimed", "stale", "unknown"

_CLAIMANT = """
local function is_claimant(key)
  return redis.call('HGET', key, 'operator') == ARGV[2]
     and redis.call('HGET', key, 'worker') == ARGV[3]
     and redis.call('HGET', key, 'boot') == ARGV[4]
end
local function register(key, running, job)
  redis.call('HSET', key, 'state', 'started', 'operator', ARGV[2], 'worker', ARGV[3],
             'boot', ARGV[4], 'started', ARGV[5])
  redis.call('HSET', running, job, cjson.encode({operator = tonumber(ARGV[2]),
             worker = ARGV[3], boot = ARGV[4], attempt = tonumber(ARGV[1])}))
end
"""

# ARGV: attempt, operator, worker, boot, now. The first valid start claims the attempt.
_CLAIM = _CLAIMANT + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'unknown' end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 'stale' end
if state == 'queued' then register(KEYS[1], KEYS[2], ARGV[6]) return 'ok' end
if state == 'started' then
  if is_claimant(KEYS[1]) then return 'ok' end
  return 'claimed'
end
return state
"""

# ARGV: attempt, operator, worker, boot, now, job id, status, error. A final event that
# finds its attempt still queued (its start not applied yet, or never sent) claims it too.
_FINISH = _CLAIMANT + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'unknown' end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 'stale' end
if state == 'queued' then register(KEYS[1], KEYS[2], ARGV[6]) state = 'started' end
if state == 'started' then
  if not is_claimant(KEYS[1]) then return 'claimed' end
  redis.call('HSET', KEYS[1], 'state', ARGV[7], 'error', ARGV[8])
  redis.call('HDEL', KEYS[2], ARGV[6])
  return 'ok'
end
if state == ARGV[7] and is_claimant(KEYS[1]) then return 'ok' end
return state
"""

# ARGV: job id, error, the states it applies to (comma-separated), the status to set, and
# '1' when a job with no record (never published yet) may be decided too.
# The gateway's own decisions: cancel, deadline, time limit, a worker lost for good.
_DECIDE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  if ARGV[5] ~= '1' then return 'unknown' end
  redis.call('HSET', KEYS[1], 'state', ARGV[4], 'attempt', 1, 'error', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  return 'ok:queued'
end
if not string.find(',' .. ARGV[3] .. ',', ',' .. state .. ',', 1, true) then return state end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'error', ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
return 'ok:' .. state
"""

# ARGV: job id, the attempt lost, and the claimant when it must be the one asking (a
# worker out of memory) or '' (the controller: its worker is gone). Returns the next
# attempt's number, or the reason it gets none.
_REQUEUE = _CLAIMANT + """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'started' then return state or 'unknown' end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 'stale' end
if ARGV[2] ~= '' and not is_claimant(KEYS[1]) then return 'claimed' end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'queued')
redis.call('HDEL', KEYS[1], 'operator', 'worker', 'boot', 'started')
redis.call('HDEL', KEYS[2], ARGV[6])
return tostring(attempt)
"""


@dataclass(frozen=True)
class Claimant:
    """The worker process an attempt belongs to: its operator, its name, and its boot
    id (a new one each time the process starts)."""

    operator_id: int
    worker: str
    boot: str

    def argv(self) -> list[str]:
        return [str(self.operator_id), self.worker, self.boot]


@dataclass(frozen=True)
class Control:
    """A job's control record as it stands."""

    state: str
    attempt: int
    claimant: Claimant | None
    started: float | None = None
    deadline: float | None = None
    time_limit: float | None = None
    error: str | None = None
    published: float | None = None  # when its message was last sent

    @classmethod
    def parse(cls, raw: dict) -> "Control | None":
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if "state" not in fields:
            return None
        claimant = (Claimant(int(fields["operator"]), fields["worker"], fields["boot"])
                    if "operator" in fields else None)
        number = lambda name: float(fields[name]) if fields.get(name) else None  # noqa: E731
        return cls(fields["state"], int(fields.get("attempt", 1)), claimant,
                   number("started"), number("deadline"), number("time_limit"),
                   fields.get("error") or None, number("published"))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _keys(job_id: str) -> list[str]:
    return [job_control_key(job_id), RUNNING_JOBS]


# ARGV: the record's TTL, then (when KEYS[2], a queue's list, is given) the message to
# push there, the channel and the event to publish, then the record's fields.
_INIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields = 2
if KEYS[2] then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  fields = 5
end
redis.call('HSET', KEYS[1], unpack(ARGV, fields))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def init(redis, job_id: str, deadline: float | None, time_limit: float,
         now: float, send: Outgoing | None = None) -> bool:
    """A new job's record: queued, first attempt (written by the gateway as it
    enqueues the job), and with it, in the same script, the job's message `send`
    (tasks/dispatch.py): one round trip, and the message is sent only with its record.
    False, and nothing written or sent, when the job has a record already (a cancel
    came first, or another process enqueued it)."""
    return redis.eval(*_init_args(job_id, deadline, time_limit, now, send)) == 1


def ask_init(pipe, job_id: str, deadline: float | None, time_limit: float, now: float,
             send: Outgoing | None = None) -> None:
    """Adds init to `pipe`, for a caller that sends it with other commands; its reply is
    1 when the record was made."""
    pipe.eval(*_init_args(job_id, deadline, time_limit, now, send))


def _init_args(job_id: str, deadline: float | None, time_limit: float, now: float,
               send: Outgoing | None) -> list:
    fields = {"state": JobStatus.QUEUED, "attempt": 1, "time_limit": time_limit,
              "published": now}
    if deadline is not None:
        fields["deadline"] = deadline
    argv = [item for pair in fields.items() for item in pair]
    keys = [job_control_key(job_id)]
    if send is not None:
        keys.append(send.queue_key)
        argv = [send.message, send.event_channel, send.event, *argv]
    return [_INIT, len(keys), *keys, CONTROL_TTL_SECONDS, *argv]


def published(redis, job_id: str, now: float) -> None:
    """When the job's message was sent again."""
    redis.hset(job_control_key(job_id), "published", now)


def read(redis, job_id: str) -> Control | None:
    return Control.parse(redis.hgetall(job_control_key(job_id)))


def ask(pipe, job_id: str) -> None:
    """Adds the read of the job's record to `pipe`; Control.parse its reply."""
    pipe.hgetall(job_control_key(job_id))


def state(redis, job_id: str) -> str | None:
    value = redis.hget(job_control_key(job_id), "state")
    return _text(value) if value else None


@dataclass(frozen=True)
class Call:
    """One of the scripts below with its arguments: run alone (on), or with others in
    one round trip (run_all), as the recorder does with a batch of events."""

    script: str
    keys: tuple[str, ...]
    args: tuple[str, ...]

    def on(self, redis) -> str:
        return _text(redis.eval(self.script, len(self.keys), *self.keys, *self.args))


def run_all(redis, calls: list[Call]) -> list[str | Exception]:
    """Each call's outcome, in order, or the error it met (the others still apply)."""
    if not calls:
        return []
    with redis.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.eval(call.script, len(call.keys), *call.keys, *call.args)
        found = pipe.execute(raise_on_error=False)
    return [outcome if isinstance(outcome, Exception) else _text(outcome) for outcome in found]


def claim(job_id: str, attempt: int, claimant: Claimant, now: float) -> Call:
    """A worker's start: OK (also when it already holds the attempt), CLAIMED, STALE,
    UNKNOWN, or the job's final status."""
    return Call(_CLAIM, tuple(_keys(job_id)),
                (str(attempt), *claimant.argv(), repr(now), job_id))


def finish(job_id: str, attempt: int, claimant: Claimant, status: JobStatus,
           error: str | None, now: float) -> Call:
    """A worker's outcome: OK (also when it was already applied), CLAIMED, STALE,
    UNKNOWN, or the final status someone else decided first."""
    return Call(_FINISH, tuple(_keys(job_id)),
                (str(attempt), *claimant.argv(), repr(now), job_id, status, error or ""))


def decide(redis, job_id: str, status: JobStatus, error: str | None,
           when: tuple[JobStatus, ...], unpublished: bool = False) -> tuple[bool, str]:
    """The gateway's own decision (cancel, deadline, time limit, lost for good), applied
    only while the job is in one of `when` (or, `unpublished`, has no record yet):
    (applied, the state it found)."""
    found = _text(redis.eval(_DECIDE, 2, *_keys(job_id), job_id, error or "",
                             ",".join(when), status, "1" if unpublished else "0",
                             CONTROL_TTL_SECONDS))
    return (True, found[3:]) if found.startswith("ok:") else (False, found)


def cancel(redis, job_id: str) -> tuple[bool, str]:
    return decide(redis, job_id, JobStatus.CANCELED, None,
                  (JobStatus.QUEUED, JobStatus.STARTED), unpublished=True)


def requeue(redis, job_id: str, attempt: int, claimant: Claimant | None = None) -> int | str:
    """Gives a lost attempt its successor: the next attempt's number, or why not."""
    argv = claimant.argv() if claimant else ["", "", ""]
    found = _text(redis.eval(_REQUEUE, 2, *_keys(job_id), str(attempt), *argv, "", job_id))
    return int(found) if found.isdigit() else found


def running(redis) -> dict[str, tuple[Claimant, int]]:
    """Every running job's claimant and attempt."""
    found = {}
    for job_id, raw in redis.hgetall(RUNNING_JOBS).items():
        entry = json.loads(raw)
        found[_text(job_id)] = (Claimant(entry["operator"], entry["worker"], entry["boot"]),
                                entry["attempt"])
    return found
