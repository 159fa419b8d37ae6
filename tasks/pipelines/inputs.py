"""Uploaded media: sniffed, measured and checked before a job is made of it."""

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from tasks.pipelines.base import InvalidRequest

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}


@dataclass(frozen=True)
class Upload:
    field: str
    data: bytes
    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_image(field: str, data: bytes, max_side: int) -> Upload:
    """The image's header gives its size before any pixel is decoded, so a decompression
    bomb is refused without being inflated. The format comes from the bytes, not from the
    client's word."""
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidRequest(f"Unsupported image format in {field}; use PNG, JPEG or WebP.",
                             415)
    except Image.DecompressionBombError:
        raise InvalidRequest(f"Image in {field} has too many pixels.")
    if image.format not in IMAGE_FORMATS:
        raise InvalidRequest(f"Unsupported image format {image.format} in {field}; "
                             "use PNG, JPEG or WebP.", 415)
    width, height = image.size
    if width < 8 or height < 8:
        raise InvalidRequest(f"Image in {field} is {width}x{height}; each side must be at "
                             "least 8 pixels.")
    if width > max_side or height > max_side:
        raise InvalidRequest(f"Image in {field} is {width}x{height}; "
                             f"the largest side allowed is {max_side}.")
    try:
        image.load()
    except Exception:
        raise InvalidRequest(f"Invalid or corrupt image in {field}.")
    return Upload(field, data, image.format, width, height)
