"""Reading the workers' heartbeats: which workers are alive and what they hold."""

import json

from tasks import names


def live_workers(redis) -> list[dict]:
    """Every worker whose heartbeat has not expired."""
    keys = list(redis.scan_iter(match=names.WORKER_KEY_PATTERN, count=500))
    if not keys:
        return []
    return [json.loads(raw) for raw in redis.mget(keys) if raw]


def serves_warm(worker: dict, pipeline: str, model_id: str) -> bool:
    return any(m["pipeline"] == pipeline and m["model_id"] == model_id and m["ready"]
               for m in worker.get("models", []))


def loads_on_demand(worker: dict, pipeline: str) -> bool:
    return pipeline in worker.get("dynamic", [])
