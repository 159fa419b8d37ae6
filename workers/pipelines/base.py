"""The one small interface every pipeline module implements."""

import io
from typing import Callable, ClassVar

from tasks.messages import Output

# Called after each denoising step with (step, total_steps).
StepCallback = Callable[[int, int], None]


class Pipeline:
    """A loaded model that turns validated params and input media into outputs."""

    name: ClassVar[str]

    def __init__(self, model_path: str, device: str):
        self.device = device
        self.load(model_path)

    def load(self, model_path: str) -> None:
        raise NotImplementedError

    def run(self, params: dict, inputs: dict[str, bytes], on_step: StepCallback) -> list[Output]:
        raise NotImplementedError

    def smoke(self) -> None:
        """The cheapest real inference, run once after loading to prove the model works."""
        raise NotImplementedError


def torch_dtype(device: str):
    import torch

    return torch.float16 if device.startswith("cuda") else torch.float32


def generators(seed: int, count: int):
    """One generator per image, seeded seed + i, on the CPU so that the same seed gives
    the same image on any hardware."""
    import torch

    return [torch.Generator(device="cpu").manual_seed(seed + i) for i in range(count)]


def diffusers_step_callback(on_step: StepCallback, total: int):
    """Adapts our step callback to diffusers' callback_on_step_end."""

    def callback(pipe, step, timestep, callback_kwargs):
        on_step(step + 1, total)
        return callback_kwargs

    return callback


def png_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
