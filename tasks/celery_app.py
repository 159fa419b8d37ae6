"""The Celery app, configured for long GPU jobs, built from the environment."""

import os

from celery import Celery
from kombu import Queue

from tasks import names
from tasks.catalog import Catalog
from tasks.pipelines import PIPELINES
from tasks.settings import DEFAULT_MAX_JOB_SECONDS, DEFAULT_MODELS_FILE, DEFAULT_REDIS_URL, Env


def queues_for(catalog: Catalog | None, declare: bool = True) -> list[Queue]:
    """Every queue, declared up front so Flower shows them even with no consumer: a cold
    queue per registered pipeline, a queue per model of those the models file names.
    Only the gateway's processes declare them (bind them to the exchange): an operator's
    user may not write kombu's bindings, which route every publisher's messages."""
    names_ = [names.GATEWAY_QUEUE] + [names.cold_queue(pipeline) for pipeline in PIPELINES]
    if catalog is not None:
        names_ += [names.model_queue(e.pipeline, e.model_id) for e in catalog.entries
                   if e.pipeline in PIPELINES]
    return [Queue(name, no_declare=not declare) for name in names_]


def make_celery(redis_url: str, catalog: Catalog | None = None,
                max_job_seconds: int = DEFAULT_MAX_JOB_SECONDS, operator_side: bool = False,
                own_queues: tuple[str, ...] = ()) -> Celery:
    """The app of the gateway's processes, or (operator_side) of an operator's: its
    workers declare no queue, take no remote control command (the pidbox is a broadcast
    any worker's user could write) and keep no results. `own_queues`: queues outside the
    catalog that this process consumes (a slot's own, a redeemer's payments queue)."""
    # No result backend: a job's state and result live in PostgreSQL, written by the
    # recorder from the workers' events, and Flower follows tasks through task events.
    # With one, every send_task would also subscribe to a result channel no one reads.
    celery = Celery("genai", broker=redis_url, backend=None)
    queues = queues_for(catalog, declare=not operator_side)
    queues += [Queue(name, no_declare=operator_side) for name in own_queues]
    # polling_interval: how soon a worker sees a queue it was told to consume (add_consumer
    # after an on-demand load), 1 s by default.
    visibility = {"visibility_timeout": max_job_seconds + 300, "polling_interval": 0.1}
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_queues=queues,
        task_default_queue=names.GATEWAY_QUEUE,
        # A GPU job is long and precious: ack after it ran, take one at a time, and give
        # it back to the queue when the process running it dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # Celery reads the visibility timeout in two places (broker, app).
        broker_transport_options=visibility,
        visibility_timeout=visibility["visibility_timeout"],
        broker_connection_retry_on_startup=True,
        task_send_sent_event=True,
        worker_send_task_events=True,
        worker_enable_soft_shutdown_on_idle=True,
        worker_soft_shutdown_timeout=max_job_seconds,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=not operator_side,
    )
    return celery


def method_task(celery: Celery, method, **options):
    """Registers a bound method as a task. Celery checks a task's arguments against its
    function's signature when the task is sent from its own object, as every retry is;
    a bound method's signature still holds `self`, so those checks would refuse the
    right arguments and the retry would be dropped. The method checks its own."""
    return celery.task(typing=False, **options)(method)


def celery_from_env() -> Celery:
    """The app as configured by MODELS_FILE and REDIS_URL."""
    env = Env()
    catalog_path = env.str("MODELS_FILE", DEFAULT_MODELS_FILE)
    catalog = Catalog.load(catalog_path) if os.path.exists(catalog_path) else None
    return make_celery(env.str("REDIS_URL", DEFAULT_REDIS_URL), catalog)


def __getattr__(name: str):
    """`celery --app tasks.celery_app:app ...` (Flower, inspect) builds the app on first
    use, from the environment, instead of at import."""
    if name == "app":
        return celery_from_env()
    raise AttributeError(name)
