"""Tiny random-weight models of the real architectures, built from configs, one module
per family (diffusion, vision, speech, language). Each pipeline's spec names the tiny
models built for it (PipelineSpec.tiny_models), so a pipeline from another package
brings its own.

They are saved with save_pretrained and loaded by the same from_pretrained path a real
model takes, so the demo and every test exercise the real code without a download.

    python -m devstack.tiny --out .run/models
"""

import argparse
import tempfile
from pathlib import Path

from tqdm import tqdm

from tasks.pipelines import PIPELINES
from tasks.pipelines.base import load_object

# A LoRA adapter, as diffusers saves one: not a model folder, but built as one.
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"


def builders() -> dict[str, str]:
    """model_id -> "module:builder", from every registered pipeline."""
    return {model_id: builder for spec in PIPELINES.values()
            for model_id, builder in spec.tiny_models.items()}


def is_built(directory: Path) -> bool:
    from workers.cache import is_model_folder

    return is_model_folder(directory) or (directory / LORA_WEIGHTS).exists()


def build_missing(models_dir: Path, model_ids=None) -> list[str]:
    """Builds each tiny model not yet on disk; returns the ids it built."""
    known = builders()
    wanted = [m for m in (model_ids or known) if not is_built(models_dir / m)]
    for model_id in tqdm(wanted, desc="building tiny models", unit="model", disable=not wanted):
        build_with(load_object(known[model_id]), models_dir / model_id)
    return wanted


def build_with(builder, target: Path) -> None:
    """builder(out, scratch) into a staging folder, then moved to target at once: a
    half-built model is never visible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staging = Path(tmp) / "model"
        builder(staging, Path(tmp) / "scratch")
        staging.rename(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".run/models", type=Path)
    parser.add_argument("models", nargs="*", help="model ids (default: every tiny model)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    built = build_missing(args.out, args.models or None)
    print(f"built {len(built)} model(s) under {args.out}" if built else "tiny models present")
