"""The models file, modelled on go-livepeer's aiModels.json.

One entry per (pipeline, model_id). The gateway reads it for defaults, prices and the
queues to declare; a worker reads it for the models to load warm. Fields of
aiModels.json that nothing here uses (currency, optimization_flags, ...) are ignored.
"""

import json
from pathlib import Path

from pydantic import BaseModel, Field, TypeAdapter


class ModelEntry(BaseModel):
    pipeline: str
    model_id: str
    warm: bool = False
    price_per_unit: int = 0  # wei
    pixels_per_unit: int = 1
    default: bool = False  # the model used when a request's model_id is ""
    frames: int | None = None  # image-to-video: frames made (and billed); default 25
    # LoRA adapters the model offers (name -> weights); requests may name only these.
    loras: dict[str, str] = Field(default_factory=dict)


class Catalog:
    def __init__(self, entries: list[ModelEntry]):
        self.entries = entries

    @classmethod
    def load(cls, path: str | Path) -> "Catalog":
        raw = json.loads(Path(path).read_text())
        return cls(TypeAdapter(list[ModelEntry]).validate_python(raw))

    def find(self, pipeline: str, model_id: str) -> ModelEntry | None:
        for entry in self.entries:
            if entry.pipeline == pipeline and entry.model_id == model_id:
                return entry
        return None

    def default_model(self, pipeline: str) -> str | None:
        """The entry marked default, else the pipeline's first entry."""
        candidates = [e for e in self.entries if e.pipeline == pipeline]
        for entry in candidates:
            if entry.default:
                return entry.model_id
        return candidates[0].model_id if candidates else None

    def pipelines(self) -> list[str]:
        return sorted({e.pipeline for e in self.entries})
