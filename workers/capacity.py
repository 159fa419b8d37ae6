"""How much memory a request needs beyond its model's weights, estimated before it runs,
so that a worker declines what cannot fit instead of running out of memory."""

import io

# Peak activation memory per output pixel and image, measured on Stable Diffusion-class
# UNets in fp16 (attention at the highest resolution dominates); a deliberate
# overestimate for smaller models. Operators can scale it with --request-memory-scale.
BYTES_PER_OUTPUT_PIXEL = 12_000
DEFAULT_VIDEO_FRAMES = 25


def input_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size  # header only: no pixels decoded


def output_pixels(pipeline: str, params: dict, inputs: dict[str, bytes]) -> int:
    """Output pixels times the number of outputs (images, or frames of a video)."""
    if "image" in inputs and pipeline in ("image-to-image", "upscale"):
        width, height = input_size(inputs["image"])
        scale = 4 if pipeline == "upscale" else 1
        pixels = width * height * scale * scale
    else:
        pixels = params.get("width", 0) * params.get("height", 0)
    if pipeline == "image-to-video":
        return pixels * (params.get("num_frames") or DEFAULT_VIDEO_FRAMES)
    return pixels * params.get("num_images_per_prompt", 1)


def request_bytes(pipeline: str, params: dict, inputs: dict[str, bytes],
                  scale: float = 1.0) -> int:
    return int(output_pixels(pipeline, params, inputs) * BYTES_PER_OUTPUT_PIXEL * scale)
