"""The registry of pipelines: name -> spec (tasks/pipelines/base.py). The gateway's
routes, OpenAPI and billing, and the workers' runners, come from it."""

from tasks.pipelines import (
    echo, image_to_image, image_to_text, image_to_video, text_to_image, upscale,
)
from tasks.pipelines.base import PipelineSpec

PIPELINES: dict[str, PipelineSpec] = {
    module.SPEC.name: module.SPEC
    for module in (text_to_image, image_to_image, image_to_video, upscale, image_to_text, echo)
}


def pipeline_spec(name: str) -> PipelineSpec:
    try:
        return PIPELINES[name]
    except KeyError:
        raise LookupError(f"no pipeline named {name!r}") from None
