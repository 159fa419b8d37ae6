"""Uploaded media: sniffed, measured and checked before a job is made of it. Images by
Pillow from their header, audio by PyAV from its container, never by the client's word."""

import io
import math
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from tasks.pipelines.base import InvalidRequest

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}


@dataclass(frozen=True)
class Upload:
    field: str
    data: bytes
    format: str
    width: int = 0
    height: int = 0
    seconds: float = 0.0  # audio

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def duration_ms(self) -> int:
        """What audio-to-text bills, as go-livepeer does (duration in milliseconds)."""
        return math.ceil(self.seconds * 1000)


def read_upload(field: str, data: bytes, max_side: int, unsupported: int = 400) -> Upload:
    """Livepeer's file fields: `audio` is audio, every other one an image. `unsupported`
    is the status of a format that cannot be read (415 where the route declares it)."""
    if field == "audio":
        return read_audio(field, data, unsupported)
    return read_image(field, data, max_side, unsupported)


def read_image(field: str, data: bytes, max_side: int, unsupported: int = 400) -> Upload:
    """The image's header gives its size before any pixel is decoded, so a decompression
    bomb is refused without being inflated. The format comes from the bytes, not from the
    client's word. Livepeer's runner answers an unsupported image with a 400."""
    try:
        # Only the formats we take are tried: no other format's parser sees the bytes.
        image = Image.open(io.BytesIO(data), formats=sorted(IMAGE_FORMATS))
    except UnidentifiedImageError:
        raise InvalidRequest(f"Unsupported image format in {field}; use PNG, JPEG or WebP.",
                             unsupported)
    except Image.DecompressionBombError:
        raise InvalidRequest(f"Image in {field} has too many pixels.")
    except (OSError, ValueError, SyntaxError):  # a header the format's parser rejects
        raise InvalidRequest(f"Invalid or corrupt image in {field}.")
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


def read_audio(field: str, data: bytes, unsupported: int = 415) -> Upload:
    """Audio of any container and codec PyAV (FFmpeg) opens, measured from its header
    without decoding (the bill); what it cannot open, or a file with no audio stream, is
    refused. Streams that carry no duration (WebM as MediaRecorder writes it) are demuxed,
    not decoded, to find their end."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise InvalidRequest(f"No audio stream in {field}.", unsupported)
            seconds = _duration(container, container.streams.audio[0])
            name = container.format.name
    # FFmpeg's own errors, and what PyAV raises on malformed metadata (UnicodeDecodeError).
    except (av.FFmpegError, ValueError, OSError, IndexError):
        raise InvalidRequest(f"Unsupported or malformed audio in {field}.", unsupported)
    if seconds <= 0:
        raise InvalidRequest(f"The audio in {field} is empty.")
    return Upload(field, data, name, seconds=seconds)


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:  # in AV_TIME_BASE (microsecond) units
        return container.duration / 1_000_000
    end = 0.0
    for packet in container.demux(stream):
        if packet.pts is not None and packet.time_base is not None:
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end
