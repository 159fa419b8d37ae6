"""Request schemas: Livepeer's field names and defaults. The same classes validate
requests and describe them in the OpenAPI spec.

Type errors are the schema's (422); rules a client can break with well-typed values
(an empty prompt, a size that is not a multiple of 8) are 400s with a message, as
Livepeer's runner answers them."""

import secrets
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from app.errors import ApiError

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


def check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise bad_request("Prompt must be provided.")


def check_size(width: int, height: int, limits: Limits) -> None:
    if width % 8 or height % 8:
        raise bad_request(f"Height ({height}) and width ({width}) must be divisible by 8.")
    for name, value in (("width", width), ("height", height)):
        if not 8 <= value <= limits.max_side:
            raise bad_request(f"{name} must be between 8 and {limits.max_side}.")


def check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise bad_request(f"{name} must be between {low} and {high}.")


class PipelineRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model_id: str = ""
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)

    def check(self, limits: Limits) -> None:
        """The 400 rules; raises ApiError."""

    def billable_units(self, inputs: dict) -> int:
        raise NotImplementedError

    def worker_params(self) -> dict:
        """What the worker receives: every field but model_id, with the seed drawn."""
        params = self.model_dump(exclude={"model_id"})
        if params.get("seed") is None:
            params["seed"] = secrets.randbelow(MAX_SEED)
        return params


class TextToImageRequest(PipelineRequest):
    prompt: str = ""
    loras: str = ""
    height: int = 576
    width: int = 1024
    guidance_scale: float = 7.5
    negative_prompt: str = ""
    safety_check: bool = True
    num_inference_steps: int = 50
    num_images_per_prompt: int = 1

    def check(self, limits: Limits) -> None:
        check_prompt(self.prompt)
        check_size(self.width, self.height, limits)
        check_range("num_inference_steps", self.num_inference_steps, 1, limits.max_steps)
        check_range("num_images_per_prompt", self.num_images_per_prompt, 1, limits.max_images)

    def billable_units(self, inputs: dict) -> int:
        return self.width * self.height * self.num_images_per_prompt


# pipeline name -> its request schema
REQUESTS: dict[str, type[PipelineRequest]] = {
    "text-to-image": TextToImageRequest,
}
