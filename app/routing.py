"""Which queue a job goes to, learned from the workers' heartbeats."""

from app.errors import ApiError
from tasks import names
from tasks.discovery import live_workers, serves_warm

RETRY_AFTER_SECONDS = 10


def choose_queue(redis, pipeline: str, model_id: str) -> str:
    """The model's queue when a live worker holds it; otherwise 503 with Retry-After:
    queueing a job no worker can run would only make the client wait for nothing."""
    if any(serves_warm(w, pipeline, model_id) for w in live_workers(redis)):
        return names.model_queue(pipeline, model_id)
    raise ApiError(503, f"No worker can serve {pipeline} with model {model_id} now.",
                   {"Retry-After": str(RETRY_AFTER_SECONDS)})
