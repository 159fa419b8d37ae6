"""How long a job would wait before a worker starts it, estimated from the queue's depth,
the live workers that consume it and the measured service time of its model. The gateway
admits a job when the estimate fits the client's limit; the controller places models
where the estimate runs long."""

import math

from tasks import names, queues
from tasks.discovery import loads_on_demand, serves_warm
from tasks.names import model_stats_key

DEFAULT_RUN_SECONDS = 10.0  # before the first job of a model has been measured
DEFAULT_LOAD_SECONDS = 30.0
SMOOTHING = 0.2  # weight of the newest measure in the moving average
STATS_TTL_SECONDS = 7 * 24 * 3600


# KEYS: each sample's stats hash; ARGV: SMOOTHING, STATS_TTL_SECONDS, then each sample's
# field and seconds. Folded in Redis, in one round trip, so that two recorders folding
# the same model's samples lose neither.
_OBSERVE = """
local weight = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local field, seconds = ARGV[2 * i + 1], tonumber(ARGV[2 * i + 2])
  local old = tonumber(redis.call('HGET', key, field))
  local new = seconds
  if old then new = (1 - weight) * old + weight * seconds end
  redis.call('HSET', key, field, string.format('%.17g', new))
  redis.call('EXPIRE', key, ARGV[2])
end
"""


def observe(redis, samples: list[tuple[str, str, str, float]]) -> None:
    """Folds measured times, in order, into their models' moving averages: each
    sample is (pipeline, model_id, "run" or "load", seconds). One round trip however
    many there are (the recorder folds a batch of jobs at once)."""
    if not samples:
        return
    keys = [model_stats_key(pipeline, model_id) for pipeline, model_id, _, _ in samples]
    argv = [arg for _, _, field, seconds in samples for arg in (field, repr(float(seconds)))]
    redis.eval(_OBSERVE, len(keys), *keys, repr(SMOOTHING), STATS_TTL_SECONDS, *argv)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _measured(raw: dict) -> dict[str, float]:
    """A model's stats hash, with defaults for what was never measured."""
    stats = {_text(k): float(v) for k, v in raw.items()}
    return {"run": stats.get("run", DEFAULT_RUN_SECONDS),
            "load": stats.get("load", DEFAULT_LOAD_SECONDS)}


def consumers(workers: list[dict], queue: str, pipeline: str, model_id: str) -> list[dict]:
    if queue == names.cold_queue(pipeline):
        return [w for w in workers if loads_on_demand(w, pipeline)]
    return [w for w in workers if serves_warm(w, pipeline, model_id)]


def estimate_wait(redis, workers: list[dict], queue: str, pipeline: str,
                  model_id: str) -> float:
    """Seconds until a worker would start a job added to `queue` now. Zero while a
    consuming worker is idle and nothing waits before it: capacity is never refused."""
    if not consumers(workers, queue, pipeline, model_id):
        return math.inf
    with redis.pipeline(transaction=False) as pipe:
        ask_estimates(pipe, pipeline, model_id)
        return wait_from(pipe.execute(), workers, queue, pipeline, model_id)


def ask_estimates(pipe, pipeline: str, model_id: str) -> None:
    """Adds to `pipe` what estimates the wait of a job of the model in either queue it
    may take (its model's, its pipeline's cold one), for a caller that has more to ask in
    the same round trip (intake: the workers' heartbeats, which choose the queue)."""
    pipe.hgetall(model_stats_key(pipeline, model_id))
    for queue in (names.model_queue(pipeline, model_id), names.cold_queue(pipeline)):
        queues.ask_depth(pipe, queue)


def wait_from(replies: list, workers: list[dict], queue: str, pipeline: str,
              model_id: str) -> float:
    """estimate_wait's answer from the replies to ask_estimates."""
    serving = consumers(workers, queue, pipeline, model_id)
    if not serving:
        return math.inf
    raw_stats, *lengths = replies
    steps = len(lengths) // 2  # the model's queue's lists, then the cold queue's
    cold = queue == names.cold_queue(pipeline)
    stats = _measured(raw_stats)
    per_job = stats["run"] + (stats["load"] if cold else 0.0)
    idle = sum(1 for w in serving if not w.get("busy"))
    ahead = sum(lengths[steps:] if cold else lengths[:steps])
    if ahead < idle:
        return 0.0
    # The jobs ahead that no idle worker takes at once are shared by all consumers, and
    # the job then waits for a busy worker to finish: half a job on average.
    return (ahead - idle) * per_job / len(serving) + per_job / 2
