"""The models a worker holds in memory, keyed by (pipeline, model_id)."""

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from workers.pipelines import Pipeline, pipeline_class

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    pipeline: str
    model_id: str
    warm: bool
    runner: Pipeline | None = None
    load_seconds: float = 0.0
    error: str | None = None
    last_used: float = field(default_factory=time.time)

    @property
    def ready(self) -> bool:
        return self.runner is not None

    def describe(self) -> dict:
        return {"pipeline": self.pipeline, "model_id": self.model_id, "warm": self.warm,
                "ready": self.ready, "load_seconds": round(self.load_seconds, 3),
                "error": self.error}


def resolve_model_path(models_dir: Path, model_id: str) -> str:
    """A model built or copied under models_dir, else a Hugging Face id that diffusers
    finds in its local cache."""
    local = models_dir / model_id
    return str(local) if (local / "model_index.json").exists() else model_id


class ModelCache:
    def __init__(self, models_dir: Path, device: str):
        self.models_dir = Path(models_dir)
        self.device = device
        self.models: dict[tuple[str, str], LoadedModel] = {}

    def load(self, pipeline: str, model_id: str, warm: bool) -> LoadedModel:
        """Loads a model and proves it runs with a smoke inference. A failure is kept with
        its cause instead of raised, so the worker goes on serving its other models."""
        entry = LoadedModel(pipeline, model_id, warm)
        started = time.perf_counter()
        try:
            runner = pipeline_class(pipeline)(resolve_model_path(self.models_dir, model_id),
                                              self.device)
            runner.smoke()
            entry.runner = runner
        except Exception as exc:  # any failure to load is reported, never fatal
            entry.error = f"{type(exc).__name__}: {exc}"
            log.exception("model %s (%s) failed to load", model_id, pipeline)
        entry.load_seconds = time.perf_counter() - started
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

    def unload_all(self) -> None:
        self.models.clear()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
