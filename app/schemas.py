"""Request schemas: Livepeer's field names and defaults. The same classes validate
requests and describe them in the OpenAPI spec.

Type errors are the schema's (422); rules a client can break with well-typed values
(an empty prompt, a size that is not a multiple of 8) are 400s with a message, as
Livepeer's runner answers them."""

import json
import secrets
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from app.errors import ApiError
from app.uploads import Upload
from tasks.catalog import ModelEntry

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Limits:
    max_side: int = 2048
    max_steps: int = 200
    max_images: int = 8

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(config["MAX_IMAGE_SIDE"], config["MAX_STEPS"],
                   config["MAX_IMAGES_PER_REQUEST"])


def bad_request(msg: str) -> ApiError:
    return ApiError(400, msg)


MAX_PROMPT_CHARS = 2000


def check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise bad_request("Prompt must be provided.")
    check_text("prompt", prompt)


def check_text(name: str, text: str) -> None:
    if len(text) > MAX_PROMPT_CHARS:
        raise bad_request(f"{name} is longer than {MAX_PROMPT_CHARS} characters.")


def check_size(width: int, height: int, limits: Limits) -> None:
    if width % 8 or height % 8:
        raise bad_request(f"Height ({height}) and width ({width}) must be divisible by 8.")
    for name, value in (("width", width), ("height", height)):
        if not 8 <= value <= limits.max_side:
            raise bad_request(f"{name} must be between 8 and {limits.max_side}.")


def check_loras(loras: str, entry: ModelEntry) -> None:
    """loras is "" or a JSON object of adapter name -> scale, each adapter one that the
    model's entry offers."""
    if not loras:
        return
    try:
        asked = json.loads(loras)
    except ValueError:
        raise bad_request("loras must be a JSON object of adapter name to scale.")
    if not isinstance(asked, dict) or not all(
            isinstance(scale, (int, float)) and not isinstance(scale, bool)
            for scale in asked.values()):
        raise bad_request("loras must be a JSON object of adapter name to scale.")
    unknown = sorted(set(asked) - set(entry.loras))
    if unknown:
        offered = ", ".join(sorted(entry.loras)) or "none"
        raise bad_request(f"Unknown LoRA adapter(s) {', '.join(unknown)} for "
                          f"{entry.model_id}; it offers: {offered}.")


def check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise bad_request(f"{name} must be between {low} and {high}.")


class PipelineRequest(BaseModel):
    """A pipeline's request. JSON pipelines take the fields as a JSON object; multipart
    ones take them as form fields (booleans as "true"/"false") beside the files named in
    FILES."""

    model_config = ConfigDict(extra="ignore")
    CONTENT: ClassVar[str] = "application/json"
    FILES: ClassVar[tuple[str, ...]] = ()
    SUMMARY: ClassVar[str] = ""
    SCALE: ClassVar[int] = 1  # output side / input side, to cap inputs by the output
    ANSWER: ClassVar[str] = "media"  # the 200 answer: {"images": [...]}, or "text": {"text"}

    model_id: str = Field("", description="The model; \"\" means the pipeline's default.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED,
                             description="Seed of the first output; output i uses seed + i.")

    def check(self, limits: Limits) -> None:
        """The 400 rules; raises ApiError."""

    def for_model(self, entry: ModelEntry) -> None:
        """Takes what the chosen model decides (image-to-video: how many frames)."""

    def billable_units(self, uploads: dict[str, Upload]) -> int:
        raise NotImplementedError

    def worker_params(self) -> dict:
        """What the worker receives: every field but model_id, with the seed drawn."""
        params = self.model_dump(exclude={"model_id"})
        if params.get("seed") is None:
            params["seed"] = secrets.randbelow(MAX_SEED)
        return params


class PromptedRequest(PipelineRequest):
    """What text-to-image and image-to-image share: a prompt, LoRAs, images per request."""

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


class TextToImageRequest(PromptedRequest):
    SUMMARY: ClassVar[str] = "Generate images from a text prompt."

    height: int = 576
    width: int = 1024
    num_inference_steps: int = 50

    def check(self, limits: Limits) -> None:
        super().check(limits)
        check_size(self.width, self.height, limits)

    def billable_units(self, uploads: dict[str, Upload]) -> int:
        return self.width * self.height * self.num_images_per_prompt


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
            raise bad_request("strength must be greater than 0 and at most 1.")
        if int(self.num_inference_steps * self.strength) < 1:
            # diffusers runs int(steps * strength) steps: none would be an error there.
            raise bad_request("num_inference_steps * strength must be at least 1.")

    def billable_units(self, uploads: dict[str, Upload]) -> int:
        return uploads["image"].pixels * self.num_images_per_prompt


# SVD-xt's frames, which Livepeer bills image-to-video for; a model entry may say others.
DEFAULT_VIDEO_FRAMES = 25


class ImageToVideoRequest(PipelineRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("image",)
    SUMMARY: ClassVar[str] = "Generate a video (H.264 mp4) from an image."

    height: int = 576
    width: int = 1024
    fps: int = 6
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.02
    safety_check: bool = True
    num_inference_steps: int = 25
    _frames: int = PrivateAttr(DEFAULT_VIDEO_FRAMES)

    def for_model(self, entry: ModelEntry) -> None:
        self._frames = entry.frames or DEFAULT_VIDEO_FRAMES

    def worker_params(self) -> dict:
        return {**super().worker_params(), "num_frames": self._frames}

    def check(self, limits: Limits) -> None:
        check_size(self.width, self.height, limits)
        check_range("num_inference_steps", self.num_inference_steps, 1, limits.max_steps)
        check_range("fps", self.fps, 1, 60)
        check_range("motion_bucket_id", self.motion_bucket_id, 0, 1023)

    def billable_units(self, uploads: dict[str, Upload]) -> int:
        return self.width * self.height * self._frames


class UpscaleRequest(PipelineRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("image",)
    SUMMARY: ClassVar[str] = "Upscale an image 4x, guided by a text prompt."
    # The output is four times the input on each side.
    SCALE: ClassVar[int] = 4

    prompt: str = ""
    safety_check: bool = True
    num_inference_steps: int = 75

    def check(self, limits: Limits) -> None:
        check_prompt(self.prompt)
        check_range("num_inference_steps", self.num_inference_steps, 1, limits.max_steps)

    def billable_units(self, uploads: dict[str, Upload]) -> int:
        return uploads["image"].pixels


class ImageToTextRequest(PipelineRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("image",)
    SUMMARY: ClassVar[str] = "Describe an image in text (a caption)."
    ANSWER: ClassVar[str] = "text"

    prompt: str = Field("", description="The caption's beginning, which the model goes on.")

    def check(self, limits: Limits) -> None:
        check_text("prompt", self.prompt)

    def billable_units(self, uploads: dict[str, Upload]) -> int:
        return uploads["image"].pixels


class EchoRequest(PipelineRequest):
    """For benchmarks and tests: a pipeline with no model that answers its input after
    `steps` steps of `step_seconds` each (or fails as asked)."""

    SUMMARY: ClassVar[str] = "Echo the input (benchmarks and tests)."

    prompt: str = ""
    steps: int = Field(0, ge=0, le=10_000)
    step_seconds: float = Field(0.0, ge=0, le=60)
    fail: Literal["", "error", "oom"] = ""

    def billable_units(self, uploads: dict[str, Upload]) -> int:
        return 1


# pipeline name -> its request schema
REQUESTS: dict[str, type[PipelineRequest]] = {
    "text-to-image": TextToImageRequest,
    "image-to-image": ImageToImageRequest,
    "image-to-video": ImageToVideoRequest,
    "upscale": UpscaleRequest,
    "image-to-text": ImageToTextRequest,
    "echo": EchoRequest,
}
