"""Small media helpers for tests: make an input image, read an output back."""

import io

import av
from PIL import Image


def png(width: int = 64, height: int = 64, color=(200, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def image_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def png_size(output) -> tuple[int, int]:
    """The size of a pipeline's output, checked to be a real PNG."""
    assert output.content_type == "image/png"
    picture = Image.open(io.BytesIO(output.raw()))
    assert picture.format == "PNG"
    return picture.size


def video_facts(data: bytes) -> dict:
    """Codec, size, frame rate and frame count of an mp4, as a decoder sees them."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {"codec": stream.codec_context.name, "width": stream.width,
                "height": stream.height, "fps": float(stream.average_rate), "frames": frames}
