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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

MAX_SEED = 2**32 - 1
MAX_PROMPT_CHARS = 2000
# Peak activation memory per output pixel and image, measured on Stable Diffusion-class
# UNets in fp16 (attention at the highest resolution dominates); a deliberate
# overestimate for smaller models. Operators can scale it with --request-memory-scale.
BYTES_PER_OUTPUT_PIXEL = 12_000


class InvalidRequest(Exception):
    """A request the pipeline refuses, with the status to answer (400 unless said).
    Raised by a runner too, for what only the model can tell (a prompt longer than its
    context): the job fails with this message."""

    def __init__(self, msg: str, status: int = 400):
        super().__init__(msg)
        self.msg = msg
        self.status = status


@dataclass(frozen=True)
class Limits:
    """The caps an operator sets (app/settings.py). Each pipeline's request says which of
    its fields they cap (CAPS), so that /openapi.json shows them as maxima."""

    max_side: int = 2048
    max_steps: int = 200
    max_images: int = 8
    upload_bytes: int = 10 * 1024 * 1024
    max_tokens: int = 4096  # an llm completion

    def value(self, cap: str | int) -> int:
        return cap if isinstance(cap, int) else getattr(self, cap)


# The statuses Livepeer's spec declares on its image routes: the SDK raises a typed
# HTTPError for these and an untyped SDKError for any other.
LIVEPEER_ERRORS = (400, 401, 422, 500)


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


def render_answer(result: dict, url: Callable[[str], str]) -> dict:
    """A stored result as the route answers it: a JSON answer as the worker wrote it,
    a caption as {"text"}, media as Livepeer's {"images": [{"url", "seed", "nsfw"}]}."""
    if "body" in result:
        return result["body"]
    if "text" in result:
        return {"text": result["text"]}
    return {"images": [{"url": image.get("url") or url(image["media"]), "seed": image["seed"],
                        "nsfw": image["nsfw"]} for image in result["images"]]}


# -- requests ----------------------------------------------------------------------------

def _unstorable(value) -> bool:
    """Text PostgreSQL's JSON cannot hold: U+0000, or half of a surrogate pair (which no
    UTF-8 can encode), anywhere in `value`."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, BaseModel):
        value = value.__dict__
    if isinstance(value, dict):
        return any(_unstorable(key) or _unstorable(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_unstorable(item) for item in value)
    return False


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
    # The error statuses Livepeer's spec declares for the route; an error picks one of
    # these where one fits (an unsupported upload is a 415 only where 415 is declared).
    ERRORS: ClassVar[tuple[int, ...]] = LIVEPEER_ERRORS
    # Caps on fields: name -> (JSON schema keyword, a Limits attribute or a number).
    CAPS: ClassVar[dict[str, tuple[str, str | int]]] = {}

    model_id: str = Field("", description="The model; \"\" means the pipeline's default.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED,
                             description="Seed of the first output; output i uses seed + i.")

    def check_storable(self) -> None:
        """A job's params are stored as JSON, which PostgreSQL cannot hold U+0000 or an
        unpaired surrogate in: a request that carries one in any text is refused (a 400,
        as the schema allows any string), not failed at the write."""
        if _unstorable(self.__dict__):
            raise InvalidRequest("Text may not contain the NUL character (U+0000) or an "
                                 "unpaired surrogate.")

    def check(self, limits: Limits) -> None:
        """The 400 rules; raises InvalidRequest."""

    def for_model(self, entry) -> None:
        """Takes what the chosen model's catalog entry decides (image-to-video: how many
        frames; the LoRA adapters it offers)."""

    def billable_units(self, uploads: dict) -> int:
        """What the job is billed by, known at intake. Where the worker counts what it
        really used (used_units), this is the upper bound of that count."""
        raise NotImplementedError

    def used_units(self, outputs: list) -> int | None:
        """The units the worker counted from its outputs (llm: tokens processed), which
        it reports in its succeeded event; None where the intake count is the bill."""
        return None

    @classmethod
    def unsupported_status(cls) -> int:
        """The status of an upload or body of the wrong kind on this route."""
        return 415 if 415 in cls.ERRORS else 400

    @classmethod
    def caps(cls, limits: "Limits") -> dict[str, dict]:
        """JSON schema keywords for the capped fields, for /openapi.json."""
        return {name: {keyword: limits.value(cap)}
                for name, (keyword, cap) in cls.CAPS.items()}

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

    @classmethod
    def render(cls, result: dict, url: Callable[[str], str]) -> dict:
        """The answer of a job of this pipeline from its stored result; `url` links a
        stored media file. Pipelines whose answer is not one of render_answer's shapes
        (text-to-speech's {"audio": {"url"}}) override it."""
        return render_answer(result, url)


def load_object(reference: str):
    """"package.module:attribute", imported."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline as the network knows it, registered through the entry point group
    `genai.pipelines` (tasks/pipelines/__init__.py), built-in or from another package:

    - name, and the route (/<name> unless `route` says otherwise);
    - the request (its fields, checks, billable_units, request_bytes) and the answer
      (request.RESPONSE);
    - the default model, used when neither the request nor the models file names one;
    - the runner ("package.module:Class", imported by workers only);
    - the tiny models the dev stack builds for it (model_id -> "package.module:builder",
      each builder called as builder(out_dir, scratch_dir), imported by devstack only).

    References are strings so that this contract imports nothing of the processes."""

    name: str
    request: type[PipelineRequest]
    runner: str
    default_model: str = ""
    tiny_models: Mapping[str, str] = field(default_factory=dict)
    route: str = ""

    @property
    def path(self) -> str:
        return self.route or f"/{self.name}"

    @property
    def response(self) -> type[BaseModel]:
        return self.request.RESPONSE

    def load_runner(self) -> type:
        return load_object(self.runner)

    def params(self, raw: dict) -> PipelineRequest:
        """A job's params, as its worker reads them."""
        return self.request.model_validate(raw)
