"""segment-anything-2: masks of the objects a prompt (points, boxes, a mask) picks out."""

import json
from typing import ClassVar

from pydantic import BaseModel, Field

from tasks.pipelines.base import (
    InvalidRequest, Limits, PipelineRequest, PipelineSpec, image_size,
)

# The model's own square (1024 for SAM 2) dominates; masks are per input pixel.
BYTES_PER_INPUT_PIXEL = 64
MAX_POINTS = 64


class MasksResponse(BaseModel):
    masks: str = Field(description="The masks, as the string form of nested lists.")
    scores: str
    logits: str


def parse_array(value: str | None, name: str, shape: str):
    """A JSON array of numbers, or None when absent; 400 when it is not one."""
    if value is None or value.strip() == "":
        return None
    try:
        data = json.loads(value)
        numbers = isinstance(data, list) and _shape(data) is not None
    except (ValueError, RecursionError):  # not JSON, or nested past any real prompt
        numbers = False
    if not numbers:
        raise InvalidRequest(f"{name} must be a JSON array of numbers ({shape}).")
    return data or None


def _shape(value) -> tuple | None:
    """The shape of a nested list of numbers; None when ragged or not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        return None
    if not isinstance(value, list):
        return ()
    shapes = {_shape(item) for item in value}
    if len(shapes) > 1 or None in shapes:
        return None
    return (len(value), *(shapes.pop() if shapes else ()))


class SegmentAnything2Request(PipelineRequest):
    CONTENT: ClassVar[str] = "multipart/form-data"
    FILES: ClassVar[tuple[str, ...]] = ("image",)
    SUMMARY: ClassVar[str] = "Segment objects in an image (SAM 2)."
    RESPONSE: ClassVar[type[BaseModel]] = MasksResponse

    point_coords: str | None = Field(None, description="[[x, y], ...] point prompts, pixels.")
    point_labels: str | None = Field(None, description="[1, 0, ...]: 1 foreground, 0 background.")
    box: str | None = Field(None, description="[x1, y1, x2, y2], or several boxes.")
    mask_input: str | None = Field(None, description="A 1 x H x W low-resolution mask "
                                   "(H = W = 256 for SAM 2), from an earlier answer.")
    multimask_output: bool = True
    return_logits: bool = True
    normalize_coords: bool = True

    def check(self, limits: Limits) -> None:
        points = parse_array(self.point_coords, "point_coords", "N x 2")
        labels = parse_array(self.point_labels, "point_labels", "N")
        parse_array(self.box, "box", "4 or B x 4")
        parse_array(self.mask_input, "mask_input", "1 x H x W")
        if (points is None) != (labels is None):
            raise InvalidRequest("point_coords and point_labels must be given together.")
        if points is not None and len(points) > MAX_POINTS:
            raise InvalidRequest(f"At most {MAX_POINTS} points.")

    def billable_units(self, uploads: dict) -> int:
        return uploads["image"].pixels  # input pixels, as go-livepeer bills it

    def request_bytes(self, inputs: dict[str, bytes], scale: float = 1.0) -> int:
        width, height = image_size(inputs["image"])
        return int(width * height * BYTES_PER_INPUT_PIXEL * scale)


SPEC = PipelineSpec(
    "segment-anything-2", SegmentAnything2Request,
    runner="workers.pipelines.segment_anything_2:SegmentAnything2",
    default_model="facebook/sam2.1-hiera-large",
    tiny_models={"tiny/sam2": "devstack.tiny.vision:build_sam2"})
