"""What text-to-image and image-to-image share: a prompt, LoRAs, images per request."""

import json

from tasks.catalog import ModelEntry
from tasks.pipelines.base import (
    InvalidRequest, Limits, PipelineRequest, check_prompt, check_range, check_text,
)


def check_loras(loras: str, entry: ModelEntry) -> None:
    """loras is "" or a JSON object of adapter name -> scale, each adapter one that the
    model's entry offers."""
    if not loras:
        return
    try:
        asked = json.loads(loras)
    except ValueError:
        raise InvalidRequest("loras must be a JSON object of adapter name to scale.")
    if not isinstance(asked, dict) or not all(
            isinstance(scale, (int, float)) and not isinstance(scale, bool)
            for scale in asked.values()):
        raise InvalidRequest("loras must be a JSON object of adapter name to scale.")
    unknown = sorted(set(asked) - set(entry.loras))
    if unknown:
        offered = ", ".join(sorted(entry.loras)) or "none"
        raise InvalidRequest(f"Unknown LoRA adapter(s) {', '.join(unknown)} for "
                             f"{entry.model_id}; it offers: {offered}.")


class PromptedRequest(PipelineRequest):
    prompt: str = ""
    loras: str = ""
    guidance_scale: float = 7.5
    negative_prompt: str = ""
    safety_check: bool = True
    num_images_per_prompt: int = 1

    def check(self, limits: Limits) -> None:
        check_prompt(self.prompt)
        check_text("negative_prompt", self.negative_prompt)
        check_range("num_inference_steps", self.num_inference_steps, 1, limits.max_steps)
        check_range("num_images_per_prompt", self.num_images_per_prompt, 1, limits.max_images)

    def for_model(self, entry: ModelEntry) -> None:
        check_loras(self.loras, entry)
