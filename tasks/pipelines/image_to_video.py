"""image-to-video: a short H.264 mp4 from an image (Stable Video Diffusion)."""

from typing import ClassVar

from pydantic.json_schema import SkipJsonSchema

from tasks.catalog import ModelEntry
from tasks.pipelines.base import Limits, PipelineRequest, PipelineSpec, check_range, check_size

# SVD-xt's frames, which Livepeer bills image-to-video for; a model entry may say others.
DEFAULT_VIDEO_FRAMES = 25


class ImageToVideoRequest(PipelineRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("image",)
    SUMMARY: ClassVar[str] = "Generate a video (H.264 mp4) from an image."
    CAPS: ClassVar[dict] = {"width": ("maximum", "max_side"), "height": ("maximum", "max_side"),
                            "num_inference_steps": ("maximum", "max_steps"),
                            "fps": ("maximum", 60), "motion_bucket_id": ("maximum", 1023)}

    height: int = 576
    width: int = 1024
    fps: int = 6
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    safety_check: bool = True
    num_inference_steps: int = 25
    # Not the client's to say: the model's catalog entry decides (for_model); None, for
    # a runner used on its own, is the model's own count.
    num_frames: SkipJsonSchema[int | None] = None

    def for_model(self, entry: ModelEntry) -> None:
        self.num_frames = entry.frames or DEFAULT_VIDEO_FRAMES

    def check(self, limits: Limits) -> None:
        check_size(self.width, self.height, limits)
        check_range("num_inference_steps", self.num_inference_steps, 1, limits.max_steps)
        check_range("fps", self.fps, 1, 60)
        check_range("motion_bucket_id", self.motion_bucket_id, 0, 1023)

    def billable_units(self, uploads: dict) -> int:
        return self.width * self.height * (self.num_frames or DEFAULT_VIDEO_FRAMES)

    def output_pixels(self, inputs: dict[str, bytes]) -> int:
        return self.width * self.height * (self.num_frames or DEFAULT_VIDEO_FRAMES)


SPEC = PipelineSpec(
    "image-to-video", ImageToVideoRequest, runner="workers.pipelines.image_to_video:ImageToVideo",
    default_model="stabilityai/stable-video-diffusion-img2vid-xt",
    tiny_models={"tiny/svd": "devstack.tiny.diffusion:build_svd"})
