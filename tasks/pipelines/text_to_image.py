"""text-to-image: images from a text prompt."""

from typing import ClassVar

from tasks.pipelines.base import Limits, PipelineSpec, check_size
from tasks.pipelines.prompted import PromptedRequest


class TextToImageRequest(PromptedRequest):
    SUMMARY: ClassVar[str] = "Generate images from a text prompt."
    CAPS: ClassVar[dict] = {**PromptedRequest.CAPS, "width": ("maximum", "max_side"),
                            "height": ("maximum", "max_side")}

    height: int = 576
    width: int = 1024
    num_inference_steps: int = 50

    def check(self, limits: Limits) -> None:
        super().check(limits)
        check_size(self.width, self.height, limits)

    def billable_units(self, uploads: dict) -> int:
        return self.width * self.height * self.num_images_per_prompt

    def output_pixels(self, inputs: dict[str, bytes]) -> int:
        return self.width * self.height * self.num_images_per_prompt


SPEC = PipelineSpec(
    "text-to-image", TextToImageRequest, runner="workers.pipelines.text_to_image:TextToImage",
    default_model="stabilityai/sdxl-turbo",
    tiny_models={"tiny/sd": "devstack.tiny.diffusion:build_sd",
                 "tiny/sd-safety-flags-all": "devstack.tiny.diffusion:build_sd_flagging",
                 "tiny/sd-style-lora": "devstack.tiny.diffusion:build_sd_lora"})
