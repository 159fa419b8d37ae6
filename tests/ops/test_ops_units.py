"""The pieces of operating it, one at a time: JSON log lines and the job id they carry,
GPU stats from NVML, a slot's scrape-time gauges, the warm-loading progress bar, the
gunicorn hooks, and payment totals that read zero before the payment tables exist."""

import io
import json
import logging
import runpy
import uuid
from pathlib import Path
from types import SimpleNamespace

import psycopg
from celery import Celery
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tasks import logs

ROOT = Path(__file__).resolve().parents[2]


def test_json_lines_carry_the_bound_job_and_exceptions():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter(process="unit"))
    logger = logging.getLogger("ops.unit")
    logger.addHandler(handler)
    try:
        logs.bind_job("job-1")
        logger.warning("about %s", "it")
        logs.bind_job(None)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["msg"] == "about it" and first["job_id"] == "job-1"
    assert first["level"] == "WARNING" and first["process"] == "unit" and first["ts"]
    assert "job_id" not in second and "ValueError: boom" in second["exc"]


def test_celery_tasks_log_under_the_job_they_are_about():
    job_id = str(uuid.uuid4())
    assert logs.job_of_task("t", [{"job_id": job_id, "status": "started"}]) == job_id
    assert logs.job_of_task("t", [job_id, "worker", {}]) == job_id  # settle(job_id, ...)
    assert logs.job_of_task("t", ["not a job"]) is None and logs.job_of_task("t", []) is None

    celery = Celery("unit", broker="memory://", backend="cache+memory://")
    celery.conf.task_always_eager = True
    logs.connect_celery()

    @celery.task(name="unit.seen")
    def seen(event):
        return logs.current_job()

    assert seen.delay({"job_id": job_id}).get() == job_id
    assert logs.current_job() is None  # unbound once the task ended


class FakeNvml:
    def __init__(self, fail=False):
        self.fail = fail
        self.opened = []

    def nvmlInit(self):
        if self.fail:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlDeviceGetHandleByIndex(self, index):
        self.opened.append(index)
        return f"gpu{index}"

    def nvmlDeviceGetHandleByUUID(self, uuid_):
        self.opened.append(uuid_)
        return uuid_

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=3 * 1024**3, total=80 * 1024**3)

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(gpu=42, memory=10)


def test_gpu_probe_reads_the_slot_gpu_from_nvml():
    from workers.metrics import GpuProbe

    nvml = FakeNvml()
    stats = GpuProbe("1", nvml=nvml).stats()
    assert stats == {"gpu": "1", "name": "NVIDIA H100 80GB HBM3", "utilization": 0.42,
                     "memory_used": 3 * 1024**3, "memory_total": 80 * 1024**3}
    assert nvml.opened == [1]
    GpuProbe("GPU-5e1f,GPU-aa", nvml=nvml).stats()
    assert nvml.opened[-1] == "GPU-5e1f"  # the first of CUDA_VISIBLE_DEVICES
    assert GpuProbe("", nvml=FakeNvml()).stats() is None  # a CPU slot
    broken = GpuProbe("0", nvml=FakeNvml(fail=True))
    assert broken.stats() is None and broken.stats() is None  # tried once, then quiet


def test_slot_collector_exports_gpu_models_and_busy():
    from workers.metrics import GpuProbe, SlotCollector

    runtime = SimpleNamespace(
        settings=SimpleNamespace(worker_id="host-gpu1-slot0"), current_job="j",
        cache=SimpleNamespace(ready=lambda: [SimpleNamespace(pipeline="text-to-image",
                                                             model_id="tiny/sd", bytes=6e6)]))
    registry = CollectorRegistry()
    registry.register(SlotCollector(runtime, GpuProbe("1", nvml=FakeNvml())))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode())
               for s in f.samples}
    gpu = (("gpu", "1"), ("name", "NVIDIA H100 80GB HBM3"), ("worker", "host-gpu1-slot0"))
    assert samples[("genai_gpu_utilization_ratio", gpu)] == 0.42
    assert samples[("genai_gpu_memory_used_bytes", gpu)] == 3 * 1024**3
    assert samples[("genai_gpu_memory_total_bytes", gpu)] == 80 * 1024**3
    assert samples[("genai_worker_model_bytes", (("model", "tiny/sd"),
                    ("pipeline", "text-to-image"), ("worker", "host-gpu1-slot0")))] == 6e6
    assert samples[("genai_worker_busy", (("worker", "host-gpu1-slot0"),))] == 1


def test_warm_loading_shows_a_progress_bar_in_a_terminal(monkeypatch, tmp_path):
    from tasks.catalog import Catalog, ModelEntry
    from workers.events import OperatorIdentity
    from workers.runtime import Runtime, SlotSettings

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    catalog = Catalog([ModelEntry(pipeline="echo", model_id="echo", warm=True)])
    settings = SlotSettings(worker_id="unit-slot0", identity=OperatorIdentity(1, b"k"),
                            redis_url="redis://127.0.0.1:1/0", catalog=catalog,
                            models_dir=tmp_path, device="cpu", warm=[("echo", "echo")])
    assert Runtime(settings, celery=None).load_warm() == ["worker.1.unit-slot0", "echo:echo"]
    assert "loading warm models" in terminal.getvalue() and "1/1" in terminal.getvalue()


def test_gunicorn_config_starts_with_empty_metric_files_and_marks_dead_workers(
        monkeypatch, tmp_path):
    (tmp_path / "counter_999.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert not list(tmp_path.glob("*.db"))
    assert config["wsgi_app"] == "app:create_app()" and config["worker_class"] == "gevent"
    dead = []
    monkeypatch.setattr("prometheus_client.multiprocess.mark_process_dead", dead.append)
    config["child_exit"](None, SimpleNamespace(pid=4242))
    assert dead == [4242]


def test_metrics_in_one_process_and_payments_zero_without_their_tables(app, stack):
    from app.store import stats
    from app.store.db import make_sessionmaker

    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert b"genai_queue_depth" in response.data and b"genai_jobs" in response.data

    empty = f"ops_empty_{uuid.uuid4().hex[:8]}"
    admin_url = stack.postgres.server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{empty}"')
    sessions = make_sessionmaker(stack.postgres.server.get_uri(empty).replace(
        "postgresql://", "postgresql+psycopg://", 1))
    try:
        assert stats.payments(sessions, 3600) == stats.NO_PAYMENTS
    finally:
        sessions.kw["bind"].dispose()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{empty}"')


def test_the_launcher_gives_slot_i_the_metrics_port_base_plus_i(monkeypatch):
    import workers.launcher as launcher

    names = [name for name, _ in launcher.slot_plan("0,1", 2, "host")]
    assert names == ["host-gpu0-slot0", "host-gpu0-slot1", "host-gpu1-slot0", "host-gpu1-slot1"]
    assert launcher.metrics_ports(names, 9410) == dict(zip(names, [9410, 9411, 9412, 9413]))
    assert set(launcher.metrics_ports(names, 0).values()) == {0}
    started = []
    monkeypatch.setattr(launcher.subprocess, "Popen", lambda args, env: started.append(args))
    launcher.spawn("host-gpu1-slot1", "1", ["--dynamic", "all"], 2, 9413)
    assert started[0][started[0].index("--metrics-port") + 1] == "9413"
