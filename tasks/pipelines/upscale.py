"""upscale: an image four times larger on each side, guided by a text prompt."""

from typing import ClassVar

from tasks.pipelines.base import (
    MAX_PROMPT_CHARS, Limits, PipelineRequest, PipelineSpec, check_prompt, check_range,
    image_size,
)


class UpscaleRequest(PipelineRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("image",)
    SUMMARY: ClassVar[str] = "Upscale an image 4x, guided by a text prompt."
    SCALE: ClassVar[int] = 4
    CAPS: ClassVar[dict] = {"prompt": ("maxLength", MAX_PROMPT_CHARS),
                            "num_inference_steps": ("maximum", "max_steps")}

    prompt: str = ""
    safety_check: bool = True
    num_inference_steps: int = 75

    def check(self, limits: Limits) -> None:
        check_prompt(self.prompt)
        check_range("num_inference_steps", self.num_inference_steps, 1, limits.max_steps)

    def billable_units(self, uploads: dict) -> int:
        return uploads["image"].pixels

    def output_pixels(self, inputs: dict[str, bytes]) -> int:
        width, height = image_size(inputs["image"])
        return width * height * self.SCALE * self.SCALE


SPEC = PipelineSpec(
    "upscale", UpscaleRequest, runner="workers.pipelines.upscale:Upscale",
    default_model="stabilityai/stable-diffusion-x4-upscaler",
    tiny_models={"tiny/sd-x4-upscaler": "devstack.tiny.diffusion:build_sd_x4_upscaler"})
