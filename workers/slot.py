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
from prometheus_client import REGISTRY

from tasks import logs, metrics, names
from tasks.catalog import Catalog
from tasks.celery_app import make_celery, method_task
from workers.metrics import SlotCollector
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
    parser.add_argument("--dynamic", default=os.environ.get("WORKER_DYNAMIC", ""),
                        help="pipelines whose models this slot loads on demand "
                             "(comma-separated, or 'all')")
    parser.add_argument("--memory-budget-gb", type=float,
                        default=_float_env("WORKER_MEMORY_BUDGET_GB"),
                        help="memory for models and requests (default on a GPU: 90%% of "
                             "its VRAM shared by its slots; on the CPU: no limit)")
    parser.add_argument("--request-memory-scale", type=float,
                        default=float(os.environ.get("WORKER_REQUEST_MEMORY_SCALE", "1")),
                        help="scales the estimate of a request's activation memory")
    parser.add_argument("--heartbeat", type=float,
                        default=float(os.environ.get("WORKER_HEARTBEAT_SECONDS", "5")))
    parser.add_argument("--loglevel", default=os.environ.get("WORKER_LOGLEVEL", "INFO"))
    parser.add_argument("--metrics-port", type=int,
                        default=int(os.environ.get("WORKER_METRICS_PORT", "0")),
                        help="serve Prometheus metrics on this port (0: off)")
    parser.add_argument("--metrics-addr", default=os.environ.get("WORKER_METRICS_ADDR",
                                                                 "127.0.0.1"),
                        help="address the metrics server binds (0.0.0.0: all); its URL "
                             "goes in the heartbeat, with WORKER_METRICS_HOST as the host "
                             "when set")
    return parser.parse_args(argv)


def _float_env(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


def settings_from(args: argparse.Namespace) -> SlotSettings:
    from workers.pipelines import PIPELINES

    catalog = Catalog.load(args.models_file)
    # --models "" loads nothing warm; without --models, the catalog's warm entries.
    chosen = {m for m in args.models.split(",") if m} if args.models is not None else None
    warm = [(e.pipeline, e.model_id) for e in catalog.entries
            if (e.model_id in chosen if chosen is not None else e.warm)]
    dynamic = catalog.pipelines() if args.dynamic == "all" else \
        [p for p in args.dynamic.split(",") if p]
    unknown = [p for p in dynamic if p not in PIPELINES]
    if unknown:
        raise SystemExit(f"--dynamic: unknown pipelines {unknown}")
    device = args.device or default_device()
    return SlotSettings(worker_id=args.name, redis_url=args.redis_url, catalog=catalog,
                        models_dir=Path(args.models_dir), device=device, warm=warm,
                        heartbeat_interval=args.heartbeat, dynamic=dynamic,
                        budget_bytes=memory_budget(args.memory_budget_gb, device),
                        request_memory_scale=args.request_memory_scale)


def memory_budget(gigabytes: float | None, device: str) -> int | None:
    if gigabytes is not None:
        return int(gigabytes * 1024**3)
    if not device.startswith("cuda"):
        return None
    import torch

    slots = int(os.environ.get("WORKER_SLOTS_PER_GPU", "1"))
    return int(torch.cuda.get_device_properties(0).total_memory * 0.9 / slots)


def main(argv=None) -> None:
    args = parse_args(argv)
    logs.setup(args.name, args.loglevel)
    logs.connect_celery()
    settings = settings_from(args)
    settings.metrics_url = metrics.serve(args.metrics_port, args.metrics_addr,
                                         os.environ.get("WORKER_METRICS_HOST"))
    celery = make_celery(settings.redis_url, settings.catalog)
    runtime = Runtime(settings, celery)
    REGISTRY.register(SlotCollector(runtime, runtime.gpu))

    method_task(celery, runtime.run_job, name=names.RUN_JOB)
    method_task(celery, runtime.load_model, name=names.LOAD_MODEL)
    method_task(celery, runtime.unload_model, name=names.UNLOAD_MODEL)
    if settings.dynamic:
        # Paid now, before consuming, rather than by the first job loaded on demand.
        import diffusers  # noqa: F401
    queues = [names.worker_queue(settings.worker_id)] + runtime.load_warm()
    # The heartbeat starts once the worker consumes, and goes when it stops, so the
    # gateway routes to it exactly while it can take jobs.
    signals.worker_ready.connect(lambda **_: runtime.heartbeat.start(), weak=False)
    signals.worker_shutdown.connect(lambda **_: _shutdown(runtime), weak=False)

    celery.worker_main([
        "worker", "--pool=solo", f"--hostname={settings.hostname}",
        f"--queues={','.join(queues)}", f"--loglevel={args.loglevel}",
        "--without-mingle", "--without-gossip",
    ])


def _shutdown(runtime: Runtime) -> None:
    runtime.heartbeat.stop()
    runtime.cache.unload_all()


if __name__ == "__main__":
    main()
