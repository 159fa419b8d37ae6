"""Task, queue and Redis key names: the one place both sides read them from."""

RUN_JOB = "jobs.run"  # consumed by workers
RECORD = "gateway.record"  # consumed by the gateway's recorder (settle queue)

SETTLE_QUEUE = "settle"
COLD_SUFFIX = "*"


def model_queue(pipeline: str, model_id: str) -> str:
    """The queue of jobs for one model, consumed by workers that hold it warm."""
    return f"{pipeline}:{model_id}"


def cold_queue(pipeline: str) -> str:
    """The queue of jobs for models no live worker holds; loaders consume it."""
    return f"{pipeline}:{COLD_SUFFIX}"


def job_channel(job_id: str) -> str:
    """Redis pub/sub channel carrying a job's live events (started, progress, final)."""
    return f"job:{job_id}:events"


def job_progress_key(job_id: str) -> str:
    """Redis hash holding a running job's latest progress."""
    return f"job:{job_id}:progress"


def worker_key(worker_id: str) -> str:
    """Redis key of a worker's heartbeat (expires when the worker stops beating)."""
    return f"worker:{worker_id}"


WORKER_KEY_PATTERN = "worker:*"
