"""LoRA adapters on diffusers pipelines (diffusers' PEFT backend: load_lora_weights,
set_adapters), as Livepeer's runner applies the `loras` of a request.

An adapter is loaded once and kept, switched on with the request's scales for its job and
off after it, so the next job sees the base model bit for bit (weights are never fused),
and a repeat costs only set_adapters. Kept adapters are unloaded least recently used first
when they would pass the slot's LoRA memory (RunnerContext.lora_cache_bytes).

Where an adapter comes from: the models file's entry lists the adapters a model offers,
by the reference of their weights; a Hugging Face id it does not list is loaded only when
the operator allows it (WORKER_LOCAL_LORAS). Either is found as a folder (or a
.safetensors file) under the local model store or as a path, else in the Hugging Face
cache, offline (weight_name given: diffusers would otherwise ask the hub for the file
list)."""

import re
import time
from pathlib import Path

from tasks.pipelines.base import InvalidRequest
from workers.pipelines.base import RunnerContext

WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # diffusers' name for LoRA weights


def adapter_name(reference: str) -> str:
    """A PEFT adapter name from an id or path (PEFT names may not contain dots)."""
    return re.sub(r"[^0-9A-Za-z_-]", "_", reference.strip("/"))


def locate(reference: str, models_dir: Path) -> tuple[str, dict]:
    """(what load_lora_weights takes, its keyword arguments) for an adapter reference."""
    for candidate in (models_dir / reference, Path(reference)):
        if candidate.is_file():
            return str(candidate.parent), {"weight_name": candidate.name}
        if candidate.is_dir():
            names = sorted(p.name for p in candidate.glob("*.safetensors"))
            if names:
                name = WEIGHT_NAME if WEIGHT_NAME in names else names[0]
                return str(candidate), {"weight_name": name}
    # A Hugging Face id: from the cache only, so that a miss fails at once.
    return reference, {"weight_name": WEIGHT_NAME, "local_files_only": True}


def adapter_bytes(pipe, name: str) -> int:
    """Memory an adapter's weights take in the pipeline's denoiser and text encoders."""
    total = 0
    for component in ("unet", "transformer", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, component, None)
        if module is None:
            continue
        for param_name, param in module.named_parameters():
            if ".lora_" in param_name and f".{name}." in param_name + ".":
                total += param.numel() * param.element_size()
    return total


class LoraSlots:
    """The adapters kept loaded in one pipeline: apply() before a job, release() after."""

    def __init__(self, context: RunnerContext):
        self.context = context
        self.loaded: dict[str, tuple[int, float]] = {}  # name -> (bytes, last used)

    def bytes(self) -> int:
        return sum(size for size, _ in self.loaded.values())

    def apply(self, pipe, listed: dict[str, float], unlisted: dict[str, float]) -> None:
        """Switches on the job's adapters at their scales: those the models file lists,
        and Hugging Face ids it does not, where the operator allows them."""
        if unlisted and not self.context.local_loras:
            raise InvalidRequest(f"LoRA adapter(s) {', '.join(sorted(unlisted))} are not "
                                 "offered for this model.")
        asked = {**listed, **unlisted}
        if not asked:
            return
        names = [self._load(pipe, reference) for reference in asked]
        pipe.enable_lora()
        pipe.set_adapters(names, adapter_weights=list(asked.values()))

    def release(self, pipe) -> None:
        """After a job: the adapters stay loaded, switched off."""
        if self.loaded:
            pipe.disable_lora()

    def _load(self, pipe, reference: str) -> str:
        name = adapter_name(reference)
        if name in self.loaded:
            self.loaded[name] = (self.loaded[name][0], time.monotonic())
            return name
        target, options = locate(reference, self.context.models_dir)
        try:
            pipe.load_lora_weights(target, adapter_name=name, **options)
        except (OSError, ValueError) as err:
            raise InvalidRequest(f"LoRA adapter {reference} could not be loaded here: "
                                 f"{str(err).splitlines()[0][:200]}") from None
        self.loaded[name] = (adapter_bytes(pipe, name), time.monotonic())
        self._make_room(pipe, keep=name)
        return name

    def _make_room(self, pipe, keep: str) -> None:
        while self.bytes() > self.context.lora_cache_bytes and len(self.loaded) > 1:
            oldest = min((n for n in self.loaded if n != keep), key=lambda n: self.loaded[n][1])
            pipe.delete_adapters(oldest)
            del self.loaded[oldest]
