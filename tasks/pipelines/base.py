"""What every pipeline's spec is made of: its request (Livepeer's field names and
defaults, validated by the gateway and typed for the worker), its answer, what it bills
and how much memory a request needs beyond its model's weights.

Type errors are the schema's (422); rules a client can break with well-typed values (an
empty prompt, a size that is not a multiple of 8) raise InvalidRequest (a 400 with a
message), as Livepeer's runner answers them."""

from __future__ import annotations

import importlib
import io
import secrets
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 2000
# Peak activation memory per output pixel and image, measured on Stable Diffusion-class
# UNets in fp16 (attention at the highest resolution dominates); a deliberate
# overestimate for smaller models. Operators can scale it with --request-memory-scale.
BYTES_PER_OUTPUT_PIXEL = 12_000


class InvalidRequest(Exception):
    """A request the pipeline refuses, with the status to answer (400 unless said)."""

    def __init__(self, msg: str, status: int = 400):
        super().__init__(msg)
        self.msg = msg
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_side: int = 2048
    max_steps: int = 200
    max_images: int = 8


def check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise InvalidRequest("Prompt must be provided.")
    check_text("prompt", prompt)


def check_text(name: str, text: str) -> None:
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"{name} is longer than {MAX_PROMPT_CHARS} characters.")


def check_size(width: int, height: int, limits: Limits) -> None:
    if width % 8 or height % 8:
        raise InvalidRequest(f"Height ({height}) and width ({width}) must be divisible by 8.")
    for name, value in (("width", width), ("height", height)):
        if not 8 <= value <= limits.max_side:
            raise InvalidRequest(f"{name} must be between 8 and {limits.max_side}.")


def check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}.")


def image_size(data: bytes) -> tuple[int, int]:
    """An image's (width, height), from its header: no pixel is decoded."""
    from PIL import Image

    return Image.open(io.BytesIO(data)).size


# -- answers -----------------------------------------------------------------------------

class Media(BaseModel):
    url: str
    seed: int
    nsfw: bool


class ImageResponse(BaseModel):
    images: list[Media]


class TextResponse(BaseModel):
    text: str


# -- requests ----------------------------------------------------------------------------

class PipelineRequest(BaseModel):
    """A pipeline's request. JSON pipelines take the fields as a JSON object; multipart
    ones take them as form fields (booleans as "true"/"false") beside the files named in
    FILES. The worker receives the same fields, with the seed drawn (worker_params), and
    reads them back typed."""

    model_config = ConfigDict(extra="ignore")
    CONTENT: ClassVar[str] = "application/json"
    FILES: ClassVar[tuple[str, ...]] = ()
    SUMMARY: ClassVar[str] = ""
    SCALE: ClassVar[int] = 1  # output side / input side, to cap inputs by the output
    RESPONSE: ClassVar[type[BaseModel]] = ImageResponse

    model_id: str = Field("", description="The model; \"\" means the pipeline's default.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED,
                             description="Seed of the first output; output i uses seed + i.")

    def check(self, limits: Limits) -> None:
        """The 400 rules; raises InvalidRequest."""

    def for_model(self, entry) -> None:
        """Takes what the chosen model's catalog entry decides (image-to-video: how many
        frames; the LoRA adapters it offers)."""

    def billable_units(self, uploads: dict) -> int:
        raise NotImplementedError

    def output_pixels(self, inputs: dict[str, bytes]) -> int:
        """Output pixels times the number of outputs (images, or frames of a video)."""
        return 0

    def request_bytes(self, inputs: dict[str, bytes], scale: float = 1.0) -> int:
        """The activation memory this request needs beyond the model's weights."""
        return int(self.output_pixels(inputs) * BYTES_PER_OUTPUT_PIXEL * scale)

    def worker_params(self) -> dict:
        """What the worker receives: every field but model_id, with the seed drawn."""
        params = self.model_dump(exclude={"model_id"})
        if params.get("seed") is None:
            params["seed"] = secrets.randbelow(MAX_SEED)
        return params


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline as the network knows it: its route (/<name>), its request and answer,
    and the runner workers load ("package.module:Class", imported by workers only)."""

    name: str
    request: type[PipelineRequest]
    runner: str

    def load_runner(self) -> type:
        module, _, attribute = self.runner.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def params(self, raw: dict) -> PipelineRequest:
        """A job's params, as its worker reads them."""
        return self.request.model_validate(raw)
