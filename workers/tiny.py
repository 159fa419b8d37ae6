"""Tiny random-weight pipelines of the real architectures, built from configs.

They are saved with save_pretrained and loaded by the same from_pretrained path a real
model takes, so the demo and every test exercise the real code without a download.

    python -m workers.tiny --out .run/models
"""

import argparse
import json
from pathlib import Path

from tqdm import tqdm

SEED = 0


def byte_level_vocab() -> dict[str, int]:
    """The 256 byte-level symbols, the same with the end-of-word mark, and CLIP's two
    special tokens: enough for any prompt to tokenize with no merges at all."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}


def tiny_clip_tokenizer(directory: Path):
    """CLIP's tokenizer with a byte-level vocab and no merges, written as files and
    loaded back, as a real model's tokenizer is."""
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(byte_level_vocab()))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"),
                         model_max_length=77)


def tiny_clip_text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    vocab = byte_level_vocab()
    config = CLIPTextConfig(
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"], hidden_size=32, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size,
        projection_dim=32,
    )
    return CLIPTextModel(config)


def tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4, layers_per_block=1, norm_num_groups=32,
    )


def build_sd(out: Path, scratch: Path) -> None:
    """A Stable Diffusion 1.x/2.x-shaped pipeline (UNet with cross-attention, VAE, CLIP)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32,
        in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=32,
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    tokenizer = tiny_clip_tokenizer(scratch / "tokenizer")
    pipe = StableDiffusionPipeline(
        unet=unet, scheduler=scheduler, vae=tiny_vae(),
        text_encoder=tiny_clip_text_encoder(len(tokenizer)), tokenizer=tokenizer,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out)


# model_id -> builder; the ids the demo's models file names.
BUILDERS = {
    "tiny/sd": build_sd,
}


def is_built(directory: Path) -> bool:
    return (directory / "model_index.json").exists()


def build_missing(models_dir: Path, model_ids=None) -> list[str]:
    """Builds each tiny model not yet on disk; returns the ids it built."""
    import tempfile

    wanted = [m for m in (model_ids or BUILDERS) if not is_built(models_dir / m)]
    for model_id in tqdm(wanted, desc="building tiny models", unit="model", disable=not wanted):
        target = models_dir / model_id
        with tempfile.TemporaryDirectory(dir=models_dir if models_dir.exists() else None) as tmp:
            staging = Path(tmp) / "model"
            BUILDERS[model_id](staging, Path(tmp) / "scratch")
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(target)  # atomic: a half-built model is never visible
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".run/models", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    built = build_missing(args.out)
    print(f"built {len(built)} model(s) under {args.out}" if built else "tiny models present")


if __name__ == "__main__":
    main()
