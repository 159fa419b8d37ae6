"""What text-to-image and image-to-image share: a prompt, LoRAs, images per request."""

import json
import math
import re
from typing import ClassVar

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from tasks.catalog import ModelEntry
from tasks.pipelines.base import (
    MAX_PROMPT_CHARS, InvalidRequest, Limits, PipelineRequest, check_prompt, check_range,
    check_text,
)

# A Hugging Face id (owner/name): an adapter a worker may find in its local model store
# or Hugging Face cache when its operator allows it (WORKER_LOCAL_LORAS).
HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
MAX_LORAS = 8
MAX_LORA_SCALE = 10.0


def resolve_loras(loras: str, entry: ModelEntry) -> tuple[dict[str, float], dict[str, float]]:
    """loras is "" or a JSON object of adapter -> scale (Livepeer's field). Each adapter is
    one the model's entry offers (its weights are the entry's reference), or a Hugging Face
    id, which a worker loads only where its operator allows adapters from its own store.
    Returns ({listed weights reference: scale}, {unlisted id: scale})."""
    if not loras:
        return {}, {}
    try:
        asked = json.loads(loras)
    except ValueError:
        raise InvalidRequest("loras must be a JSON object of adapter name to scale.")
    if not isinstance(asked, dict) or not all(
            isinstance(scale, (int, float)) and not isinstance(scale, bool)
            and math.isfinite(scale) for scale in asked.values()):
        raise InvalidRequest("loras must be a JSON object of adapter name to scale.")
    if len(asked) > MAX_LORAS:
        raise InvalidRequest(f"At most {MAX_LORAS} LoRA adapters per request.")
    if any(abs(scale) > MAX_LORA_SCALE for scale in asked.values()):
        raise InvalidRequest(f"LoRA scales must be between -{MAX_LORA_SCALE:g} and "
                             f"{MAX_LORA_SCALE:g}.")
    unknown = sorted(name for name in asked if name not in entry.loras and not HF_ID.match(name))
    if unknown:
        offered = ", ".join(sorted(entry.loras)) or "none"
        raise InvalidRequest(f"Unknown LoRA adapter(s) {', '.join(unknown)} for "
                             f"{entry.model_id}; it offers: {offered}.")
    listed = {entry.loras[name]: float(scale) for name, scale in asked.items()
              if name in entry.loras}
    unlisted = {name: float(scale) for name, scale in asked.items() if name not in entry.loras}
    return listed, unlisted


class PromptedRequest(PipelineRequest):
    CAPS: ClassVar[dict] = {"prompt": ("maxLength", MAX_PROMPT_CHARS),
                            "negative_prompt": ("maxLength", MAX_PROMPT_CHARS),
                            "num_inference_steps": ("maximum", "max_steps"),
                            "num_images_per_prompt": ("maximum", "max_images")}

    prompt: str = Field("", description="Text prompt(s) to guide image generation. Separate "
                        "multiple prompts with '|' if supported by the model.")
    loras: str = Field("", description="A JSON object of LoRA adapter to scale, e.g. "
                       "{\"nerijs/pixel-art-xl\": 1.2}: adapters the model's entry offers, "
                       "or Hugging Face ids where the worker's operator allows them.")
    guidance_scale: float = 7.5
    negative_prompt: str = ""
    safety_check: bool = True
    num_images_per_prompt: int = 1

    def check(self, limits: Limits) -> None:
        check_prompt(self.prompt)
        check_text("negative_prompt", self.negative_prompt)
        check_range("num_inference_steps", self.num_inference_steps, 1, limits.max_steps)
        check_range("num_images_per_prompt", self.num_images_per_prompt, 1, limits.max_images)

    # Not the client's to say (for_model sets them from the model's entry): the adapters
    # asked, those the entry lists by their weights, the others by their id.
    lora_weights: SkipJsonSchema[dict[str, float]] = {}
    lora_ids: SkipJsonSchema[dict[str, float]] = {}

    def for_model(self, entry: ModelEntry) -> None:
        self.lora_weights, self.lora_ids = resolve_loras(self.loras, entry)
