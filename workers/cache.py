"""The models a worker holds in memory, keyed by (pipeline, model_id).

Models are packed under a memory budget (VRAM on a GPU, RAM on the CPU) by their
measured footprint. Warm models are loaded at start and never evicted; models loaded on
demand are evicted least recently used first when a new one needs their room."""

import gc
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from workers import metrics
from workers.pipelines import Pipeline, pipeline_class
from workers.pipelines.base import RunnerContext

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    pipeline: str
    model_id: str
    warm: bool
    runner: Pipeline | None = None
    load_seconds: float = 0.0
    bytes: int = 0
    error: str | None = None
    last_used: float = field(default_factory=time.time)

    @property
    def ready(self) -> bool:
        return self.runner is not None

    def describe(self) -> dict:
        return {"pipeline": self.pipeline, "model_id": self.model_id, "warm": self.warm,
                "ready": self.ready, "load_seconds": round(self.load_seconds, 3),
                "bytes": self.bytes, "error": self.error, "last_used": self.last_used}


def is_model_folder(directory: Path) -> bool:
    """A saved diffusers pipeline (model_index.json) or transformers model (config.json)."""
    return (directory / "model_index.json").exists() or (directory / "config.json").exists()


def resolve_model_path(models_dir: Path, model_id: str) -> str:
    """A model built or copied under models_dir, else a Hugging Face id that diffusers
    or transformers finds in its local cache."""
    local = models_dir / model_id
    return str(local) if is_model_folder(local) else model_id


def size_on_disk(path: str) -> int:
    """The weights' size: what a model will take in memory, known before loading it."""
    folder = Path(path)
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*.safetensors"))


def tensor_bytes(runner: Pipeline) -> int:
    """Bytes of every parameter and buffer of the pipeline's torch modules."""
    import torch

    pipe = getattr(runner, "pipe", None)
    components = getattr(pipe, "components", {}) if pipe is not None else {}
    total = 0
    for module in components.values():
        if isinstance(module, torch.nn.Module):
            for tensor in [*module.parameters(), *module.buffers()]:
                total += tensor.numel() * tensor.element_size()
    return total


class ModelCache:
    def __init__(self, models_dir: Path, device: str, budget_bytes: int | None = None,
                 context: RunnerContext | None = None):
        self.models_dir = Path(models_dir)
        self.device = device
        self.budget_bytes = budget_bytes
        self.context = context or RunnerContext(models_dir=self.models_dir)
        self.models: dict[tuple[str, str], LoadedModel] = {}

    def load(self, pipeline: str, model_id: str, warm: bool) -> LoadedModel:
        """Loads a model and proves it runs with a smoke inference. A failure is kept with
        its cause instead of raised, so the worker goes on serving its other models."""
        entry = LoadedModel(pipeline, model_id, warm)
        started = time.perf_counter()
        before = self._allocated()
        try:
            runner = pipeline_class(pipeline)(resolve_model_path(self.models_dir, model_id),
                                              self.device, self.context)
            runner.smoke()
            entry.runner = runner
            entry.bytes = self._allocated() - before if self._on_gpu() else tensor_bytes(runner)
        except Exception as exc:  # any failure to load is reported, never fatal
            entry.error = f"{type(exc).__name__}: {exc}"
            log.exception("model %s (%s) failed to load", model_id, pipeline)
        entry.load_seconds = time.perf_counter() - started
        metrics.observe_load(pipeline, model_id, warm, entry.load_seconds, entry.ready)
        self.models[(pipeline, model_id)] = entry
        return entry

    def get(self, pipeline: str, model_id: str) -> LoadedModel | None:
        entry = self.models.get((pipeline, model_id))
        if entry is not None and entry.ready:
            entry.last_used = time.time()
            return entry
        return None

    def ready(self) -> list[LoadedModel]:
        return [m for m in self.models.values() if m.ready]

    # -- room ----------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Weights, and what runners hold beside them (LoRA adapters kept loaded)."""
        return sum(m.bytes + m.runner.extra_bytes() for m in self.ready())

    def free_bytes(self) -> int | None:
        return None if self.budget_bytes is None else self.budget_bytes - self.used_bytes()

    def estimate(self, model_id: str) -> int:
        return size_on_disk(resolve_model_path(self.models_dir, model_id))

    def evictable(self, keep: LoadedModel | None = None) -> list[LoadedModel]:
        """Models loaded on demand, least recently used first. Warm ones stay."""
        return sorted((m for m in self.ready() if not m.warm and m is not keep),
                      key=lambda m: m.last_used)

    def plan_room(self, needed: int, keep: LoadedModel | None = None):
        """The models to evict (never `keep`) so that `needed` bytes fit, or None when
        they cannot."""
        free = self.free_bytes()
        if free is None or free >= needed:
            return []
        victims = []
        for model in self.evictable(keep):
            victims.append(model)
            free += model.bytes
            if free >= needed:
                return victims
        return None

    def evict(self, model: LoadedModel) -> None:
        self.models.pop((model.pipeline, model.model_id), None)
        model.runner = None
        self.release_memory()
        log.info("evicted %s (%s), %d bytes", model.model_id, model.pipeline, model.bytes)

    def unload_all(self) -> None:
        for model in list(self.models.values()):
            model.runner = None
        self.models.clear()
        self.release_memory()

    # -- device --------------------------------------------------------------------------

    def _on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def _allocated(self) -> int:
        if not self._on_gpu():
            return 0
        import torch

        torch.cuda.synchronize()
        return torch.cuda.memory_allocated()

    def release_memory(self) -> None:
        gc.collect()
        if self._on_gpu():
            import torch

            torch.cuda.empty_cache()
