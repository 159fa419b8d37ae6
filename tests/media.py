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


# name -> (container format, codec, sample rate): audio as clients send it
AUDIO_FORMATS = {
    "wav": ("wav", "pcm_s16le", 44_100),
    "mp3": ("mp3", "libmp3lame", 44_100),
    "flac": ("flac", "flac", 48_000),
    "ogg": ("ogg", "libopus", 48_000),
    "webm": ("webm", "libopus", 48_000),
    "m4a": ("ipod", "aac", 44_100),
}


def audio(name: str = "wav", seconds: float = 1.0) -> bytes:
    """A stereo chirp, encoded as `name` with PyAV."""
    import numpy as np

    fmt, codec, rate = AUDIO_FORMATS[name]
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * (220 + 40 * t) * t)
    samples = np.stack([mono, mono]).astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        for start in range(0, samples.shape[1], 4096):
            frame = av.AudioFrame.from_ndarray(samples[:, start:start + 4096], format="fltp",
                                               layout="stereo")
            frame.rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def wav_facts(data: bytes) -> dict:
    import wave

    with wave.open(io.BytesIO(data)) as w:
        return {"rate": w.getframerate(), "channels": w.getnchannels(),
                "seconds": w.getnframes() / w.getframerate()}
