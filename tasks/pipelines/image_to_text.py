"""image-to-text: a caption of an image (BLIP)."""

from typing import ClassVar

from pydantic import BaseModel, Field

from tasks.pipelines.base import (
    LIVEPEER_ERRORS, MAX_PROMPT_CHARS, Limits, PipelineRequest, PipelineSpec, TextResponse,
    check_text,
)


class ImageToTextRequest(PipelineRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("image",)
    SUMMARY: ClassVar[str] = "Describe an image in text (a caption)."
    RESPONSE: ClassVar[type[BaseModel]] = TextResponse
    ERRORS: ClassVar[tuple[int, ...]] = (*LIVEPEER_ERRORS, 413)
    CAPS: ClassVar[dict] = {"prompt": ("maxLength", MAX_PROMPT_CHARS)}

    prompt: str = Field("", description="The caption's beginning, which the model goes on.")

    def check(self, limits: Limits) -> None:
        check_text("prompt", self.prompt)

    def billable_units(self, uploads: dict) -> int:
        # Input pixels, as go-livepeer bills it.
        return uploads["image"].pixels


SPEC = PipelineSpec(
    "image-to-text", ImageToTextRequest, runner="workers.pipelines.image_to_text:ImageToText",
    default_model="Salesforce/blip-image-captioning-large",
    tiny_models={"tiny/blip": "devstack.tiny.vision:build_blip"})
