"""Frames to an H.264 mp4, as browsers and Livepeer's clients play it."""

import tempfile
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

# x264 settings that make the bytes a function of the frames alone, so that a seed gives the
# same file on any worker. Its assembly (picked per CPU) is not bit-exact with its C code, and
# was seen on an AVX-512 CPU to give other bytes for the same frames about once in 50 runs:
# the C code costs about a second per 25 frames at 1024x576 here. Its output also depends on
# its thread count, which is therefore fixed instead of following the machine's cores.
X264_OPTIONS = {"x264-params": "asm=0"}
X264_THREADS = 4


def encode_mp4(frames: list["Image.Image"], fps: int) -> bytes:
    """Encodes PIL frames (all of one size) at a constant fps: one tick of 1/fps per frame,
    so players show each frame for exactly 1/fps seconds."""
    if not frames:
        raise ValueError("no frames to encode")
    # A real file, not BytesIO: faststart (the index moved first, so a browser can play the
    # file while it downloads) rewrites the file in a second pass that needs a path.
    with tempfile.NamedTemporaryFile(suffix=".mp4") as out:
        _write(out.name, frames, fps)
        return out.read()


def _write(path: str, frames: list["Image.Image"], fps: int) -> None:
    import av

    width, height = frames[0].size
    # yuv420p (what every player decodes) needs even sizes: crop an odd last row/column.
    width, height = width - width % 2, height - height % 2
    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options=X264_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.thread_count = X264_THREADS
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_image(image.convert("RGB").crop((0, 0, width, height)))
            frame.pts, frame.time_base = index, stream.codec_context.time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())  # flush the frames the encoder still holds
