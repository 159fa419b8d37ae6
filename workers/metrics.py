"""A worker slot's Prometheus metrics, served by the slot itself (`--metrics-port`):
model load times, model cache hits (the job found its model warm) and misses (it had to
load it), and its GPU's utilisation and memory, read from NVML (nvidia-ml-py) at scrape
time. Every slot on a GPU reports that GPU: take `max by (host, gpu)`."""

import logging
import os

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

MODEL_LOAD = Histogram("genai_model_load_seconds", "Time to load a model and prove it runs",
                       ["pipeline", "model", "kind"], buckets=LOAD_BUCKETS)
MODEL_LOAD_FAILURES = Counter("genai_model_load_failures", "Models that failed to load",
                              ["pipeline", "model", "kind"])
CACHE_REQUESTS = Counter("genai_model_cache_requests",
                         "Jobs that found their model loaded (hit) or loaded it (miss)",
                         ["pipeline", "model", "result"])


def observe_load(pipeline: str, model_id: str, warm: bool, seconds: float, ok: bool) -> None:
    kind = "warm" if warm else "on_demand"
    if ok:
        MODEL_LOAD.labels(pipeline, model_id, kind).observe(seconds)
    else:
        MODEL_LOAD_FAILURES.labels(pipeline, model_id, kind).inc()


def cache_hit(pipeline: str, model_id: str) -> None:
    CACHE_REQUESTS.labels(pipeline, model_id, "hit").inc()


def cache_miss(pipeline: str, model_id: str) -> None:
    CACHE_REQUESTS.labels(pipeline, model_id, "miss").inc()


class GpuProbe:
    """This slot's GPU as NVML sees it: the first of CUDA_VISIBLE_DEVICES (an index or a
    UUID; the launcher pins each slot to one), or GPU 0 when it is unset. None on a CPU
    slot, or where NVML is missing; NVML is opened once, on first use."""

    def __init__(self, visible: str | None = None, nvml=None):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
        self.gpu = visible.split(",")[0].strip() if visible else ("0" if visible is None else None)
        self._nvml = nvml
        self._handle = None
        self._broken = self.gpu is None

    def _open(self):
        if self._handle is None and not self._broken:
            try:
                if self._nvml is None:
                    import pynvml

                    self._nvml = pynvml
                self._nvml.nvmlInit()
                self._handle = (self._nvml.nvmlDeviceGetHandleByIndex(int(self.gpu))
                                if self.gpu.isdigit()
                                else self._nvml.nvmlDeviceGetHandleByUUID(self.gpu))
            except Exception as exc:  # no driver, no library: a slot without GPU stats
                log.info("no GPU stats for GPU %s: %s", self.gpu, exc)
                self._broken = True
        return self._handle

    def stats(self) -> dict | None:
        """{"gpu", "name", "utilization" (0..1), "memory_used", "memory_total"} or None."""
        handle = self._open()
        if handle is None:
            return None
        try:
            memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            name = self._nvml.nvmlDeviceGetName(handle)
            return {"gpu": self.gpu, "name": name.decode() if isinstance(name, bytes) else name,
                    "utilization": self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100,
                    "memory_used": int(memory.used), "memory_total": int(memory.total)}
        except Exception as exc:  # a GPU that fell off the bus: report, never raise
            log.warning("GPU %s stats failed: %s", self.gpu, exc)
            return None


class SlotCollector:
    """Scrape-time gauges of one slot: its GPU and the models it holds."""

    def __init__(self, runtime, probe: GpuProbe):
        self.runtime = runtime
        self.probe = probe

    def collect(self):
        worker = self.runtime.settings.worker_id
        stats = self.probe.stats()
        if stats is not None:
            labels = ["worker", "gpu", "name"]
            values = [worker, stats["gpu"], stats["name"]]
            for metric, help_text, value in (
                    ("genai_gpu_utilization_ratio", "GPU busy, 0..1 (NVML)", stats["utilization"]),
                    ("genai_gpu_memory_used_bytes", "GPU memory in use (NVML)", stats["memory_used"]),
                    ("genai_gpu_memory_total_bytes", "GPU memory (NVML)", stats["memory_total"])):
                family = GaugeMetricFamily(metric, help_text, labels=labels)
                family.add_metric(values, value)
                yield family
        held = GaugeMetricFamily("genai_worker_model_bytes", "Memory each loaded model takes",
                                 labels=["worker", "pipeline", "model"])
        for model in self.runtime.cache.ready():
            held.add_metric([worker, model.pipeline, model.model_id], model.bytes)
        yield held
        busy = GaugeMetricFamily("genai_worker_busy", "1 while the slot runs a job",
                                 labels=["worker"])
        busy.add_metric([worker], 1 if self.runtime.current_job else 0)
        yield busy
