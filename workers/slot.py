"""One worker slot: a Celery worker process that loads its warm models, then consumes
the queues of the models that loaded. The launcher (python -m workers) starts one per
GPU slot; it can also be run alone:

    python -m workers.slot --name host-gpu0-slot0

It connects to Redis as its operator's user (REDIS_URL, made by `flask --app app
operators create`) and signs what it reports with its operator's key (OPERATOR_ID,
OPERATOR_TOKEN)."""

import logging

from celery import bootsteps, signals
from prometheus_client import REGISTRY

from tasks import logs, metrics_server, names
from tasks.celery_app import make_celery, method_task
from workers.metrics import SlotCollector
from workers.payments import OperatorPayments
from workers.runtime import Runtime
from workers.settings import SlotSettings, slot_settings

log = logging.getLogger("workers.slot")


def payments_for(settings: SlotSettings) -> OperatorPayments | None:
    if settings.operator is None or settings.chain is None:
        log.info("no operator payment settings: this worker's results carry no ticket params")
        return None
    return OperatorPayments(settings.operator.recipient, settings.chain)


def keep_consumer(celery, runtime: Runtime) -> None:
    """Hands Celery's consumer to the runtime, which starts and stops consuming queues
    in-process (remote control is off on operators' workers)."""

    class KeepConsumer(bootsteps.StartStopStep):
        requires = {"celery.worker.consumer.tasks:Tasks"}

        def start(self, consumer):
            runtime.consumer = consumer

    celery.steps["consumer"].add(KeepConsumer)


def main(argv=None) -> None:
    settings = slot_settings(argv)
    logs.setup(settings.worker_id, settings.loglevel)
    logs.connect_celery()
    metrics_url = metrics_server.serve(settings.metrics_port, settings.metrics_addr,
                                       settings.metrics_host)
    own_queue = names.worker_queue(settings.operator_id, settings.worker_id)
    celery = make_celery(settings.redis_url, settings.catalog, operator_side=True,
                         own_queues=(own_queue,))
    runtime = Runtime(settings, celery, payments_for(settings), metrics_url)
    REGISTRY.register(SlotCollector(runtime, runtime.gpu))
    keep_consumer(celery, runtime)

    method_task(celery, runtime.run_job, name=names.RUN_JOB)
    method_task(celery, runtime.load_model, name=names.LOAD_MODEL)
    method_task(celery, runtime.unload_model, name=names.UNLOAD_MODEL)
    method_task(celery, runtime.set_consuming, name=names.SET_CONSUMING)
    if settings.dynamic:
        # Paid now, before consuming, rather than by the first job loaded on demand.
        import diffusers  # noqa: F401
    queues = runtime.load_warm()
    # The heartbeat starts once the worker consumes, and goes when it stops, so the
    # gateway routes to it exactly while it can take jobs.
    signals.worker_ready.connect(lambda **_: _ready(runtime), weak=False)
    signals.worker_shutdown.connect(lambda **_: _shutdown(runtime), weak=False)

    celery.worker_main([
        "worker", "--pool=solo", f"--hostname={settings.hostname}",
        f"--queues={','.join(queues)}", f"--loglevel={settings.loglevel}",
        "--without-mingle", "--without-gossip",
    ])


def _ready(runtime: Runtime) -> None:
    runtime.announce()
    runtime.heartbeat.start()


def _shutdown(runtime: Runtime) -> None:
    runtime.heartbeat.stop()
    runtime.cache.unload_all()


if __name__ == "__main__":
    main()
