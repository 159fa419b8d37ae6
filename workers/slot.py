"""One worker slot: a Celery worker process that loads its warm models, then consumes
the queues of the models that loaded. The launcher (python -m workers) starts one per
GPU slot; it can also be run alone:

    python -m workers.slot --name host-gpu0-slot0
"""

import argparse
import logging
import os
from pathlib import Path

from celery import signals

from tasks import names
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from workers.runtime import Runtime, SlotSettings, default_device

log = logging.getLogger("workers.slot")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one worker slot.")
    parser.add_argument("--name", required=True, help="worker id, e.g. host-gpu0-slot0")
    parser.add_argument("--models-file", default=os.environ.get("MODELS_FILE", "models.json"))
    parser.add_argument("--models-dir", default=os.environ.get("MODELS_DIR", ".run/models"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                             "redis://127.0.0.1:6379/0"))
    parser.add_argument("--device", default=os.environ.get("WORKER_DEVICE"))
    parser.add_argument("--models", default=None,
                        help="comma-separated model ids to load warm (default: warm entries)")
    parser.add_argument("--heartbeat", type=float,
                        default=float(os.environ.get("WORKER_HEARTBEAT_SECONDS", "5")))
    parser.add_argument("--loglevel", default=os.environ.get("WORKER_LOGLEVEL", "INFO"))
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> SlotSettings:
    catalog = Catalog.load(args.models_file)
    chosen = set(args.models.split(",")) if args.models else None
    warm = [(e.pipeline, e.model_id) for e in catalog.entries
            if (e.model_id in chosen if chosen is not None else e.warm)]
    return SlotSettings(worker_id=args.name, redis_url=args.redis_url, catalog=catalog,
                        models_dir=Path(args.models_dir), device=args.device or default_device(),
                        warm=warm, heartbeat_interval=args.heartbeat)


def private_queue(worker_id: str) -> str:
    """A queue only this worker consumes, so Celery never falls back to the default one."""
    return f"worker.{worker_id}"


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.loglevel,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(args)
    celery = make_celery(settings.redis_url, settings.catalog)
    runtime = Runtime(settings, celery)

    celery.task(name=names.RUN_JOB)(runtime.run_job)
    queues = [private_queue(settings.worker_id)] + runtime.load_warm()
    # The heartbeat starts once the worker consumes, and goes when it stops, so the
    # gateway routes to it exactly while it can take jobs.
    signals.worker_ready.connect(lambda **_: runtime.heartbeat.start(), weak=False)
    signals.worker_shutdown.connect(lambda **_: _shutdown(runtime), weak=False)

    celery.worker_main([
        "worker", "--pool=solo", f"--hostname={settings.worker_id}@%h",
        f"--queues={','.join(queues)}", f"--loglevel={args.loglevel}",
        "--without-mingle", "--without-gossip",
    ])


def _shutdown(runtime: Runtime) -> None:
    runtime.heartbeat.stop()
    runtime.cache.unload_all()


if __name__ == "__main__":
    main()
