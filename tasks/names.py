"""Every task, queue, Redis key and channel name the processes share: the one place both
sides read them from."""

# -- tasks -------------------------------------------------------------------------------

RUN_JOB = "jobs.run"  # consumed by workers
LOAD_MODEL = "jobs.load_model"  # placement, sent to one worker's own queue
UNLOAD_MODEL = "jobs.unload_model"
SET_CONSUMING = "jobs.set_consuming"  # start or stop taking jobs from a queue
PAYMENT = "operator.payment"  # signed tickets for an operator's redeemer (payments:<address>)
PARAMS_REQUEST = "operator.params_request"  # the gateway asks the redeemer for fresh params

# -- queues ------------------------------------------------------------------------------

GATEWAY_QUEUE = "gateway"  # the gateway's own default queue, which operators' users cannot write
COLD_SUFFIX = "*"


def model_queue(pipeline: str, model_id: str) -> str:
    """The queue of jobs for one model, consumed by workers that hold it warm."""
    return f"{pipeline}:{model_id}"


def cold_queue(pipeline: str) -> str:
    """The queue of jobs for models no live worker holds; loaders consume it."""
    return f"{pipeline}:{COLD_SUFFIX}"


def worker_queue(operator_id: int, worker_id: str) -> str:
    """A queue only this worker consumes: placement commands, and so that Celery never
    falls back to the default queue."""
    return f"worker.{operator_id}.{worker_id}"


def payments_queue(operator_address: str) -> str:
    """The queue of one operator's payments and requests for params, consumed by its
    redeemer. Callers pass the checksummed address so both sides spell it alike."""
    return f"payments:{operator_address}"


# -- operators ---------------------------------------------------------------------------
# An operator's processes write only keys of their own (its events stream, its slots'
# heartbeats), each behind its own Redis user (app/operators.py sets the user up).

def operator_user(operator_id: int) -> str:
    """An operator's Redis user."""
    return f"operator-{operator_id}"


def operator_events(operator_id: int) -> str:
    """The stream an operator's workers and redeemer append their messages to (signed:
    tasks/envelope.py); the gateway's recorder reads every operator's."""
    return f"events:operator-{operator_id}"


OPERATOR_EVENTS_PATTERN = "events:operator-*"
OPERATOR_REFUSALS = "gateway:refusals"  # "<operator id>:<reason>" -> messages refused
KEYS_GENERATION = "gateway:keys-generation"  # bumped on every revoke: caches forget keys
KEYS_CHANGED = "gateway:keys-changed"  # a channel: a key revoked (caches forget keys at once)
OPERATORS_CHANGED = "gateway:operators-changed"  # a channel: an operator made or revoked


# -- a job's keys and channel ------------------------------------------------------------

RUNNING_JOBS = "gateway:running"  # job id -> its claimant (operator, worker, boot, attempt)
PARKED_EVENTS = "gateway:parked-events"  # messages the recorder could not apply, kept


def job_control_key(job_id: str) -> str:
    """A job's control record (tasks/control.py)."""
    return f"job:{job_id}:ctl"


def job_channel(job_id: str) -> str:
    """Redis pub/sub channel carrying a job's live events (started, progress, final)."""
    return f"job:{job_id}:events"


JOB_CHANNELS = job_channel("*")  # the pattern of every job's channel


def job_of_channel(channel: str) -> str:
    return channel.removeprefix("job:").removesuffix(":events")


def job_progress_key(job_id: str) -> str:
    """Redis hash holding a running job's latest progress."""
    return f"job:{job_id}:progress"


# -- workers -----------------------------------------------------------------------------

WORKER_KEY_PATTERN = "worker:*"


def worker_key(operator_id: int, worker_id: str) -> str:
    """Redis key of a worker's heartbeat (expires when the worker stops beating)."""
    return f"worker:{operator_id}:{worker_id}"


def worker_of_key(key: str) -> tuple[int, str]:
    """(operator id, worker id) from a heartbeat's key: who wrote it is the key's owner,
    whatever the heartbeat says of itself."""
    _, operator_id, worker_id = key.split(":", 2)
    return int(operator_id), worker_id


def model_stats_key(pipeline: str, model_id: str) -> str:
    """A model's measured run and load times (tasks/admission.py)."""
    return f"stats:{pipeline}:{model_id}"


# -- the controller ----------------------------------------------------------------------

PLACEMENT_LOG = "placement:decisions"


def placement_cooldown_key(pipeline: str, model_id: str) -> str:
    return f"placement:loading:{pipeline}:{model_id}"


# -- per API key limits (the gateway's) --------------------------------------------------

def rate_window_key(api_key_id: int, minute: int) -> str:
    return f"ratelimit:{api_key_id}:{minute}"


def daily_quota_key(api_key_id: int, day: str) -> str:
    return f"quota:{api_key_id}:{day}"


IN_FLIGHT_PATTERN = "gateway:in-flight:*"


def in_flight_key(api_key_id: int) -> str:
    """A key's jobs queued or running (job id -> when admitted): its fair share."""
    return f"gateway:in-flight:{api_key_id}"
