"""Tiny diffusion pipelines (Stable Diffusion, SVD, the x4 upscaler) and a LoRA adapter
for the tiny SD, random weights of the real architectures, built from configs."""

import json
from pathlib import Path

SEED = 0
# Frames per clip of tiny/svd when a request names none (SVD-xt has 25).
TINY_SVD_FRAMES = 4


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


def build_sd(out: Path, scratch: Path, safety: dict | None = None) -> None:
    """A Stable Diffusion 1.x/2.x-shaped pipeline (UNet with cross-attention, VAE, CLIP),
    with a safety checker and its feature extractor when `safety` gives them."""
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
        **(safety or {"safety_checker": None, "feature_extractor": None,
                      "requires_safety_checker": False}),
    )
    pipe.save_pretrained(out)


def tiny_safety_checker(flag_everything: bool) -> dict:
    """Stable Diffusion's safety checker on a tiny CLIP. Its concept thresholds decide:
    at -1 every image is flagged, which lets tests see `safety_check` work."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import (
        StableDiffusionSafetyChecker,
    )
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(SEED)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
                     "num_hidden_layers": 1, "vocab_size": 1000},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
                       "num_hidden_layers": 1, "image_size": 32, "patch_size": 8},
        projection_dim=32)
    checker = StableDiffusionSafetyChecker(config).eval()
    if flag_everything:
        with torch.no_grad():
            checker.concept_embeds_weights.fill_(-1.0)
            checker.special_care_embeds_weights.fill_(-1.0)
    return {"safety_checker": checker, "requires_safety_checker": True,
            "feature_extractor": CLIPImageProcessor(size={"shortest_edge": 32},
                                                    crop_size={"height": 32, "width": 32})}


def build_sd_flagging(out: Path, scratch: Path) -> None:
    build_sd(out, scratch, tiny_safety_checker(flag_everything=True))


def build_svd(out: Path, scratch: Path) -> None:
    """A Stable Video Diffusion-shaped pipeline: spatio-temporal UNet, temporal-decoder VAE,
    CLIP image encoder. Sized like diffusers' own SVD tests, except one layer per block (half
    the time per step) and an image encoder for the 224x224 input the pipeline always feeds
    it (32-pixel patches keep that cheap)."""
    import torch
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler,
                           StableVideoDiffusionPipeline, UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(SEED)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16,
        in_channels=8, out_channels=4,  # noisy latents + the conditioning image's latents
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=8,
        # added time ids are (fps, motion_bucket_id, noise_aug_strength), 32 wide each
        addition_time_embed_dim=32, projection_class_embeddings_input_dim=96,
        num_frames=TINY_SVD_FRAMES,
    )
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"], latent_channels=4,
    )
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4,
        image_size=224, patch_size=32, intermediate_size=37,
    ))
    # SVD-xt's scheduler settings (v-prediction, Karras sigmas).
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        interpolation_type="linear", prediction_type="v_prediction", sigma_max=700.0,
        sigma_min=0.002, steps_offset=1, timestep_spacing="leading",
        timestep_type="continuous", use_karras_sigmas=True,
    )
    pipe = StableVideoDiffusionPipeline(
        vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )
    pipe.save_pretrained(out)


def build_sd_x4_upscaler(out: Path, scratch: Path) -> None:
    """A stable-diffusion-x4-upscaler-shaped pipeline, as diffusers' upscaler tests build it:
    the UNet denoises latents concatenated with the noised low-res image (4 + 3 channels),
    the noise level is its class label, and a three-block VAE decodes latents at 4x."""
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler,
                           StableDiffusionUpscalePipeline, UNet2DConditionModel)

    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 32, 64), layers_per_block=1, sample_size=32,
        in_channels=7, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, use_linear_projection=True,
        only_cross_attention=(True, True, False),
        num_class_embeds=1000,  # one per noise level; the real model's count
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=4, layers_per_block=1, norm_num_groups=32,
        scaling_factor=0.08333,  # the upscaler's; the pipeline rewrites any other value
    )
    tokenizer = tiny_clip_tokenizer(scratch / "tokenizer")
    pipe = StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=tiny_clip_text_encoder(len(tokenizer)), tokenizer=tokenizer,
        unet=unet, low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"),
        safety_checker=None, feature_extractor=None, watermarker=None, max_noise_level=350,
    )
    pipe.save_pretrained(out)


UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def build_sd_lora(out: Path, scratch: Path, rank: int = 4, strength: float = 0.5) -> None:
    """A LoRA adapter for tiny/sd, saved as diffusers' training scripts save one
    (pytorch_lora_weights.safetensors, keys unet.* and text_encoder.*): on the UNet's
    attention projections and the CLIP text encoder's, A and B random and non-zero
    (init_lora_weights=False), B scaled by `strength` so images change but stay images.
    The base is built here again: the same seed gives tiny/sd's weights."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    build_sd(scratch / "base", scratch / "base-scratch")
    pipe = StableDiffusionPipeline.from_pretrained(str(scratch / "base"))
    torch.manual_seed(SEED + 1)
    layers = {}
    for key, module, targets in (("unet", pipe.unet, UNET_LORA_TARGETS),
                                 ("text_encoder", pipe.text_encoder, TEXT_LORA_TARGETS)):
        module.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets,
                                      init_lora_weights=False))
        with torch.no_grad():
            for name, param in module.named_parameters():
                if ".lora_B." in name:
                    param.mul_(strength)
        layers[f"{key}_lora_layers"] = convert_state_dict_to_diffusers(
            get_peft_model_state_dict(module))
    StableDiffusionPipeline.save_lora_weights(out, safe_serialization=True, **layers)
