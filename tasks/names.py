"""Task, queue and Redis key names: the one place both sides read them from."""

RUN_JOB = "jobs.run"  # consumed by workers
LOAD_MODEL = "jobs.load_model"  # placement, sent to one worker's own queue
UNLOAD_MODEL = "jobs.unload_model"
RECORD = "gateway.record"  # consumed by the gateway's recorder (settle queue)
SETTLE = "gateway.settle"  # pay for a succeeded job (settle queue)
PAYMENT_RECEIPT = "gateway.payment_receipt"  # an operator's verdicts on its tickets (settle queue)
PAYMENT = "operator.payment"  # signed tickets for an operator's redeemer (payments:<address>)

SETTLE_QUEUE = "settle"
WEBHOOK_QUEUE = "webhooks"
COLD_SUFFIX = "*"


def model_queue(pipeline: str, model_id: str) -> str:
    """The queue of jobs for one model, consumed by workers that hold it warm."""
    return f"{pipeline}:{model_id}"


def cold_queue(pipeline: str) -> str:
    """The queue of jobs for models no live worker holds; loaders consume it."""
    return f"{pipeline}:{COLD_SUFFIX}"


def worker_queue(worker_id: str) -> str:
    """A queue only this worker consumes: placement commands, and so that Celery never
    falls back to the default queue."""
    return f"worker.{worker_id}"


PLACEMENT_LOG = "placement:decisions"


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


def payments_queue(operator_address: str) -> str:
    """The queue of one operator's payments, consumed by its redeemer. Callers pass the
    checksummed address (chain.codec.to_address) so both sides spell it alike."""
    return f"payments:{operator_address}"
