"""Audio in and out with PyAV (FFmpeg's libraries): any container and codec decoded to
the mono float samples a model takes, and samples written as a 16-bit PCM WAV. No ffmpeg
binary, torchaudio or librosa."""

import io


class AudioDecodeError(ValueError):
    """Not audio PyAV can decode (the gateway refuses most of these at intake)."""


def decode_audio(data: bytes, rate: int):
    """The first audio stream, decoded, downmixed to mono and resampled to `rate` Hz, as
    float32 samples in [-1, 1]."""
    import av
    import numpy as np

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    pieces = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioDecodeError("no audio stream")
            for frame in container.decode(container.streams.audio[0]):
                pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
            # What the resampler holds back until it is flushed.
            pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.FFmpegError, ValueError, OSError, IndexError) as err:
        raise AudioDecodeError(f"undecodable audio: {err}") from None
    if not pieces:
        raise AudioDecodeError("the audio stream has no samples")
    return np.concatenate(pieces).astype(np.float32, copy=False)


def wav_bytes(samples, rate: int) -> bytes:
    """Mono float samples in [-1, 1] as a 16-bit PCM WAV."""
    import wave

    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()


def resample(samples, rate: int, target: int):
    """Mono float32 samples from `rate` to `target` Hz."""
    import av
    import numpy as np

    frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt",
                                       layout="mono")
    frame.rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
    pieces = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(pieces)
