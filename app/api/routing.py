"""Which queue a job goes to, learned from the workers' heartbeats."""

from app.api.errors import ApiError
from tasks import names
from tasks.discovery import loads_on_demand, serves_warm

RETRY_AFTER_SECONDS = 10


def choose_queue(workers: list[dict], pipeline: str, model_id: str) -> str:
    """Warm first: the model's queue when a live worker holds it; else the pipeline's
    cold queue when a live worker loads its models on demand; else 503 with
    Retry-After, since queueing a job no worker can run would only make it wait."""
    if any(serves_warm(w, pipeline, model_id) for w in workers):
        return names.model_queue(pipeline, model_id)
    if any(loads_on_demand(w, pipeline) for w in workers):
        return names.cold_queue(pipeline)
    raise ApiError(503, f"No worker can serve {pipeline} with model {model_id} now.",
                   {"Retry-After": str(RETRY_AFTER_SECONDS)})
