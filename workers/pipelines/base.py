"""The one small interface every pipeline module implements."""

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tasks.messages import Output
from tasks.pipelines.base import PipelineRequest

# Called after each step with (step, total_steps), and, by a runner that streams its
# answer (llm), with a chunk of it as a third argument: the runtime publishes the chunk
# with the progress, and the gateway streams it to the client. It raises to stop the job.
StepCallback = Callable[..., None]


@dataclass(frozen=True)
class RunnerContext:
    """What a runner may need of its slot beyond its model: the local model store, and
    the operator's policy on LoRA adapters (workers/settings.py)."""

    models_dir: Path = Path(".run/models")
    # Adapters named by a Hugging Face id that the models file does not list are loaded
    # from the local model store or the Hugging Face cache only when this is on.
    local_loras: bool = False
    lora_cache_bytes: int = 2 * 1024**3  # adapters kept loaded between jobs, at most


class Pipeline:
    """A loaded model that turns a job's params (its pipeline's request, typed) and input
    media into outputs."""

    def __init__(self, model_path: str, device: str, context: RunnerContext | None = None):
        self.device = device
        self.context = context or RunnerContext()
        self.load(model_path)

    def extra_bytes(self) -> int:
        """Memory the runner holds beyond its model's weights (adapters kept loaded)."""
        return 0

    def load(self, model_path: str) -> None:
        raise NotImplementedError

    def run(self, params: PipelineRequest, inputs: dict[str, bytes],
            on_step: StepCallback) -> list[Output]:
        raise NotImplementedError

    def smoke(self) -> list[Output]:
        """The cheapest real inference, run once after loading to prove the model works;
        its outputs, which say it did."""
        raise NotImplementedError


class StepThrottle:
    """A step callback that passes steps on at most every `interval` seconds, and always
    the last one and any with a chunk. For runners whose steps are tokens: a round trip to
    Redis per token would cost a small model a good part of its speed. The callback is
    also where a cancel or a time limit stops the job: within `interval`, then."""

    def __init__(self, on_step: StepCallback, interval: float = 0.05):
        self.on_step = on_step
        self.interval = interval
        self.last = float("-inf")

    def __call__(self, step: int, total: int, chunk: dict | None = None) -> None:
        now = time.monotonic()
        if chunk is None and step < total and now - self.last < self.interval:
            return
        self.last = now
        if chunk is None:
            self.on_step(step, total)
        else:
            self.on_step(step, total, chunk)


def torch_dtype(device: str):
    import torch

    return torch.float16 if device.startswith("cuda") else torch.float32


def generators(seed: int, count: int):
    """One generator per image, seeded seed + i, on the CPU so that the same seed gives
    the same image on any hardware."""
    import torch

    return [torch.Generator(device="cpu").manual_seed(seed + i) for i in range(count)]


def diffusers_step_callback(on_step: StepCallback, total: int | None = None):
    """Adapts our step callback to diffusers' callback_on_step_end. Without a total, the
    pipeline's own count of the steps it runs is reported, for pipelines that run fewer
    than asked (img2img runs only int(steps * strength))."""

    def callback(pipe, step, timestep, callback_kwargs):
        on_step(step + 1, total or pipe.num_timesteps)
        return callback_kwargs

    return callback


def png_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def open_image(data: bytes):
    """An uploaded image as RGB, turned upright as its EXIF says (phones store it sideways)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def snap_to_multiple(image, multiple: int = 8):
    """The image resized down to sides divisible by `multiple`, as latent diffusion needs
    (the VAE works in blocks of 8 pixels); the same image when they already are."""
    width, height = (side - side % multiple for side in image.size)
    if not width or not height:
        raise ValueError(f"image sides must be at least {multiple} pixels")
    return resize_to(image, (width, height))


def resize_to(image, size: tuple[int, int]):
    from PIL import Image

    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def plain_png(width: int = 64, height: int = 64) -> bytes:
    """A plain grey PNG: the input of smoke runs of the pipelines that take an image."""
    from PIL import Image

    return png_bytes(Image.new("RGB", (width, height), (128, 128, 128)))


class SafetyChecker:
    """The model's own safety checker, run apart from the pipeline and only when the
    request asks (safety_check): it flags images as nsfw and leaves them as they are,
    where diffusers would black them out."""

    def __init__(self, pipe):
        self.checker = getattr(pipe, "safety_checker", None)
        self.extractor = getattr(pipe, "feature_extractor", None)
        if self.checker is not None:
            pipe.safety_checker = None

    def flags(self, images, wanted: bool) -> list[bool]:
        if not wanted or self.checker is None or self.extractor is None:
            return [False] * len(images)
        import numpy as np
        import torch

        features = self.extractor(images, return_tensors="pt").pixel_values
        arrays = np.stack([np.asarray(image, dtype=np.float32) / 255 for image in images])
        with torch.no_grad():
            _, nsfw = self.checker(images=arrays, clip_input=features.to(
                self.checker.device, self.checker.dtype))
        return [bool(flag) for flag in nsfw]
