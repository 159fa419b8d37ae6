"""image-to-image: an image transformed, guided by a text prompt."""

from typing import ClassVar

from tasks.pipelines.base import InvalidRequest, Limits, PipelineSpec, image_size
from tasks.pipelines.prompted import PromptedRequest


class ImageToImageRequest(PromptedRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("image",)
    SUMMARY: ClassVar[str] = "Transform an image guided by a text prompt."

    strength: float = 0.8
    image_guidance_scale: float = 1.5
    num_inference_steps: int = 100

    def check(self, limits: Limits) -> None:
        super().check(limits)
        if not 0.0 < self.strength <= 1.0:
            raise InvalidRequest("strength must be greater than 0 and at most 1.")
        if int(self.num_inference_steps * self.strength) < 1:
            # diffusers runs int(steps * strength) steps: none would be an error there.
            raise InvalidRequest("num_inference_steps * strength must be at least 1.")

    def billable_units(self, uploads: dict) -> int:
        return uploads["image"].pixels * self.num_images_per_prompt

    def output_pixels(self, inputs: dict[str, bytes]) -> int:
        width, height = image_size(inputs["image"])
        return width * height * self.num_images_per_prompt


SPEC = PipelineSpec(
    "image-to-image", ImageToImageRequest, runner="workers.pipelines.image_to_image:ImageToImage",
    default_model="stabilityai/sdxl-turbo",
    # Any text-to-image SD checkpoint is also an image-to-image one (AutoPipeline).
    tiny_models={"tiny/sd-img2img": "devstack.tiny.diffusion:build_sd"})
