"""Reading the workers' heartbeats: which workers are alive and what they hold."""

import json

from tasks import names


def live_workers(redis) -> list[dict]:
    """Every worker whose heartbeat has not expired, with the operator it belongs to:
    the key's, whatever the heartbeat says (an operator writes only its own keys)."""
    keys = list(redis.scan_iter(match=names.WORKER_KEY_PATTERN, count=500))
    if not keys:
        return []
    workers = []
    for key, raw in zip(keys, redis.mget(keys)):
        if not raw:
            continue
        operator_id, worker_id = names.worker_of_key(key.decode() if isinstance(key, bytes)
                                                     else key)
        workers.append({**json.loads(raw), "id": worker_id, "operator": operator_id})
    return workers


def serves_warm(worker: dict, pipeline: str, model_id: str) -> bool:
    return any(m["pipeline"] == pipeline and m["model_id"] == model_id and m["ready"]
               for m in worker.get("models", []))


def loads_on_demand(worker: dict, pipeline: str) -> bool:
    return pipeline in worker.get("dynamic", [])
