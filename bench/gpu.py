"""GPU benchmarks, for an H100/H200 (not run by make bench):

    python -m bench.gpu                       # every section, results in bench/results/gpu.*
    python -m bench.gpu --only sd-turbo       # one section (sd-turbo, sdxl, svd, batching)
    python -m bench.gpu --no-compile          # skip torch.compile (minutes of compiling)
    python -m bench.gpu --smoke               # tiny configs, any device: checks the script

Full-size architectures are built from their configs with random weights, on the GPU
(no download: nothing outside the machine is needed): an sd-turbo-class pipeline (SD 2.1
UNet, OpenCLIP-H text encoder, SD VAE) at 512x512 with 1 and 4 steps, an SDXL-class
pipeline (UNet 2.6B, both text encoders) at 1024x1024, and Stable Video Diffusion at a
few frames. Random weights take the same time per step as trained ones.

For each, the bare diffusers call is timed against our worker's code path, the pipeline
module the slot calls per job (workers/pipelines/*: params, CPU generators, step
callback, PNG or MP4 encoding), on the same pipeline object, turn by turn. Then the
options: bf16 against fp16, SDPA against classic attention, channels_last, torch.compile;
and dynamic batching: B compatible jobs (same model, size and steps; different prompts and
seeds) in one forward pass, images per second against one job at a time. The slot does
not batch yet: `run_batched` below is what a batcher would call.

The slot's per-job bookkeeping around the pipeline (claim, events, ack) is measured on the
CPU by bench/worker.py and bench/dispatch.py; it does not depend on the GPU."""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.charts import ratio_chart
from bench.options import RESULTS_DIR
from bench.results import Row, format_table, machine_facts
from bench.stats import summary

SECTIONS = ("sd-turbo", "sdxl", "svd", "batching")
PROMPTS = ["a lighthouse at dawn", "a red fox in the snow", "a bowl of ramen, studio light",
           "an astronaut riding a horse", "a watercolor of Lisbon", "a cat in a space suit",
           "a mountain lake at noon", "a robot reading a book"]


# -- building full-size pipelines from configs, random weights ----------------------------

def clip_text_config(hidden, layers, heads, inter, projection, act, vocab=49408):
    from transformers import CLIPTextConfig

    from devstack.tiny.diffusion import byte_level_vocab

    vocab_ids = byte_level_vocab()
    return CLIPTextConfig(hidden_size=hidden, num_hidden_layers=layers,
                          num_attention_heads=heads, intermediate_size=inter,
                          projection_dim=projection, hidden_act=act, vocab_size=vocab,
                          max_position_embeddings=77,
                          bos_token_id=vocab_ids["<|startoftext|>"],
                          eos_token_id=vocab_ids["<|endoftext|>"],
                          pad_token_id=vocab_ids["<|endoftext|>"])


def tokenizer(scratch: Path, name: str):
    """CLIP's tokenizer with a byte-level vocab (workers/tiny.py): 77 tokens as the real
    one pads to, so the text encoder does the same work."""
    from devstack.tiny.diffusion import tiny_clip_tokenizer

    return tiny_clip_tokenizer(scratch / name)


def sd_vae(smoke: bool, temporal: bool = False):
    from diffusers import AutoencoderKL, AutoencoderKLTemporalDecoder

    channels = [32, 64] if smoke else [128, 256, 512, 512]
    if temporal:
        return AutoencoderKLTemporalDecoder(
            block_out_channels=channels, in_channels=3, out_channels=3, latent_channels=4,
            down_block_types=["DownEncoderBlock2D"] * len(channels),
            layers_per_block=1 if smoke else 2)
    return AutoencoderKL(block_out_channels=channels, in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D"] * len(channels),
                         up_block_types=["UpDecoderBlock2D"] * len(channels),
                         latent_channels=4, layers_per_block=1 if smoke else 2,
                         norm_num_groups=32, scaling_factor=0.18215)


def build_sd_turbo(scratch: Path, smoke: bool):
    """SD 2.1 / sd-turbo: UNet 865M (320-640-1280-1280, linear projections, 1024-wide
    cross-attention), OpenCLIP ViT-H text encoder (1024 wide, 23 layers), SD VAE."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    if smoke:
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=32,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
            attention_head_dim=8, use_linear_projection=True)
        text = CLIPTextModel(clip_text_config(32, 2, 4, 37, 32, "gelu", vocab=1000))
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, sample_size=64,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                              "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                            "CrossAttnUpBlock2D"),
            cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
            use_linear_projection=True)
        text = CLIPTextModel(clip_text_config(1024, 23, 16, 4096, 512, "gelu"))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear",
                                       timestep_spacing="trailing")
    return StableDiffusionPipeline(vae=sd_vae(smoke), text_encoder=text,
                                   tokenizer=tokenizer(scratch, "sd"), unet=unet,
                                   scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def build_sdxl(scratch: Path, smoke: bool):
    """SDXL: UNet 2.6B (320-640-1280, 1/2/10 transformer layers, 2048-wide cross-attention,
    text_time added embeddings), CLIP ViT-L and OpenCLIP ViT-bigG text encoders, SD VAE."""
    from diffusers import (EulerDiscreteScheduler, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    if smoke:
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=32,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=64,
            attention_head_dim=(2, 4), use_linear_projection=True,
            transformer_layers_per_block=(1, 2), addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=80)
        text1 = CLIPTextModel(clip_text_config(32, 2, 4, 37, 32, "quick_gelu", vocab=1000))
        text2 = CLIPTextModelWithProjection(clip_text_config(32, 2, 4, 37, 32, "gelu",
                                                             vocab=1000))
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(320, 640, 1280), layers_per_block=2, sample_size=128,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=2048, attention_head_dim=(5, 10, 20),
            use_linear_projection=True, transformer_layers_per_block=(1, 2, 10),
            addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816)
        text1 = CLIPTextModel(clip_text_config(768, 12, 12, 3072, 768, "quick_gelu"))
        text2 = CLIPTextModelWithProjection(clip_text_config(1280, 32, 20, 5120, 1280, "gelu"))
    vae = sd_vae(smoke)
    vae.register_to_config(scaling_factor=0.13025, force_upcast=False)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear",
                                       timestep_spacing="trailing")
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text1, text_encoder_2=text2,
                                     tokenizer=tokenizer(scratch, "xl1"),
                                     tokenizer_2=tokenizer(scratch, "xl2"), unet=unet,
                                     scheduler=scheduler)


def build_svd(scratch: Path, smoke: bool):
    """Stable Video Diffusion (xt): spatio-temporal UNet 1.5B, temporal-decoder VAE,
    OpenCLIP ViT-H image encoder."""
    from diffusers import (EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import (CLIPImageProcessor, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    if smoke:
        unet = UNetSpatioTemporalConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=16,
            down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            cross_attention_dim=32, num_attention_heads=8, addition_time_embed_dim=32,
            projection_class_embeddings_input_dim=96, num_frames=4)
        vision = CLIPVisionConfig(hidden_size=32, projection_dim=32, num_hidden_layers=2,
                                  num_attention_heads=4, image_size=224, patch_size=32,
                                  intermediate_size=37)
    else:
        unet = UNetSpatioTemporalConditionModel()  # its defaults are SVD's config
        vision = CLIPVisionConfig(hidden_size=1280, projection_dim=1024, num_hidden_layers=32,
                                  num_attention_heads=16, image_size=224, patch_size=14,
                                  intermediate_size=5120, hidden_act="gelu")
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        interpolation_type="linear", prediction_type="v_prediction", sigma_max=700.0,
        sigma_min=0.002, steps_offset=1, timestep_spacing="leading",
        timestep_type="continuous", use_karras_sigmas=True)
    return StableVideoDiffusionPipeline(
        vae=sd_vae(smoke, temporal=True), image_encoder=CLIPVisionModelWithProjection(vision),
        unet=unet, scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224))


def build(builder, scratch: Path, smoke: bool, device: str, dtype):
    """The pipeline, its weights created directly on the device (fast, even for 2.6B)."""
    import torch

    torch.manual_seed(0)
    with torch.device(device):
        pipe = builder(scratch, smoke)
    pipe = pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# -- the two code paths -------------------------------------------------------------------

def our_runner(cls, pipe, device: str):
    """Our pipeline module around an already built pipeline (instead of from_pretrained):
    the code the worker slot runs for every job."""
    runner = cls.__new__(cls)
    runner.device = device
    runner.pipe = pipe
    return runner


def t2i_params(size: int, steps: int, guidance: float, seed: int = 0, prompt: str = PROMPTS[0]):
    return {"prompt": prompt, "negative_prompt": "", "width": size, "height": size,
            "guidance_scale": guidance, "num_inference_steps": steps,
            "num_images_per_prompt": 1, "seed": seed, "safety_check": False}


def bare_t2i(pipe, params, device):
    import torch

    return pipe(prompt=params["prompt"], width=params["width"], height=params["height"],
                guidance_scale=params["guidance_scale"],
                num_inference_steps=params["num_inference_steps"],
                generator=torch.Generator(device).manual_seed(params["seed"])).images


def run_batched(runner, jobs: list[dict]):
    """What a dynamic batcher in the slot would do with compatible jobs (same model, size,
    steps and guidance): one pipeline call, a prompt and a generator per job, then each
    job's image encoded as the slot does."""
    from workers.pipelines.base import generators, png_bytes

    first = jobs[0]
    result = runner.pipe(prompt=[j["prompt"] for j in jobs],
                         negative_prompt=None, width=first["width"], height=first["height"],
                         guidance_scale=first["guidance_scale"],
                         num_inference_steps=first["num_inference_steps"],
                         generator=[generators(j["seed"], 1)[0] for j in jobs])
    return [png_bytes(image) for image in result.images]


def no_step(step, total):
    return None


# -- timing -------------------------------------------------------------------------------

class Timer:
    def __init__(self, device: str, warmup: int, iters: int):
        self.device, self.warmup, self.iters = device, warmup, iters

    def sync(self):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def compare(self, fns: dict) -> dict:
        """Times each function `iters` times, taking turns, after `warmup` calls each;
        returns per-function stats in ms and peak memory."""
        import torch

        for fn in fns.values():
            for _ in range(self.warmup):
                fn()
        self.sync()
        times = {name: [] for name in fns}
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        for _ in range(self.iters):
            for name, fn in fns.items():
                self.sync()
                t0 = time.perf_counter()
                fn()
                self.sync()
                times[name].append(1000 * (time.perf_counter() - t0))
        peak = (torch.cuda.max_memory_allocated() if self.device.startswith("cuda") else None)
        return {name: {**summary(values), "peak_bytes": peak} for name, values in times.items()}


# -- sections -----------------------------------------------------------------------------

def section_t2i(name, builder, size, steps_list, guidance, args, timer, scratch, out):
    import torch

    from workers.pipelines.text_to_image import TextToImage

    device, fp16 = args.device, args.half
    rows, details = [], {}
    pipe = build(builder, scratch, args.smoke, device, fp16)
    runner = our_runner(TextToImage, pipe, device)
    label = f"{name} {size}x{size}"
    for steps in steps_list:
        params = t2i_params(size, steps, guidance)
        stats = timer.compare({"bare": lambda: bare_t2i(pipe, params, device),
                               "ours": lambda: runner.run(params, {}, no_step)})
        details[f"{steps}_steps"] = stats
        rows.append(Row(f"{label}, {steps} step(s): our worker path / bare diffusers",
                        1000 / stats["ours"]["p50"], 1000 / stats["bare"]["p50"], "img/s",
                        (">=", 0.97)))
    steps = steps_list[-1]
    params = t2i_params(size, steps, guidance)

    def bare():
        return bare_t2i(pipe, params, device)

    base = timer.compare({"bare": bare})["bare"]
    details["options"] = {"fp16_sdpa": base}
    if not args.smoke or device.startswith("cuda"):
        pipe.to(dtype=torch.bfloat16)
        bf16 = timer.compare({"bare": bare})["bare"]
        pipe.to(dtype=fp16)
        details["options"]["bf16_sdpa"] = bf16
        rows.append(Row(f"{label}, {steps} steps: bf16 / fp16 (img/s)", 1000 / bf16["p50"],
                        1000 / base["p50"], "img/s"))
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    pipe.unet.set_attn_processor(AttnProcessor())
    classic = timer.compare({"bare": bare})["bare"]
    pipe.unet.set_attn_processor(AttnProcessor2_0())
    details["options"]["fp16_classic_attention"] = classic
    rows.append(Row(f"{label}, {steps} steps: SDPA / classic attention (img/s)",
                    1000 / base["p50"], 1000 / classic["p50"], "img/s"))
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    channels_last = timer.compare({"bare": bare})["bare"]
    details["options"]["fp16_sdpa_channels_last"] = channels_last
    rows.append(Row(f"{label}, {steps} steps: channels_last / default (img/s)",
                    1000 / channels_last["p50"], 1000 / base["p50"], "img/s"))
    if args.compile:
        eager_unet = pipe.unet
        t0 = time.perf_counter()
        pipe.unet = torch.compile(eager_unet, mode=args.compile_mode, fullgraph=True)
        bare()  # compiles
        timer.sync()
        compile_seconds = time.perf_counter() - t0
        compiled = timer.compare({"bare": bare, "ours": lambda: runner.run(params, {}, no_step)})
        details["options"]["fp16_sdpa_channels_last_compiled"] = compiled
        details["compile_seconds"] = compile_seconds
        rows.append(Row(f"{label}, {steps} steps: torch.compile / eager, channels_last "
                        f"(img/s)", 1000 / compiled["bare"]["p50"],
                        1000 / channels_last["p50"], "img/s"))
        rows.append(Row(f"{label}, {steps} steps, compiled: our path / bare",
                        1000 / compiled["ours"]["p50"], 1000 / compiled["bare"]["p50"],
                        "img/s", (">=", 0.97)))
        pipe.unet = eager_unet
    out["pipe"] = pipe
    return rows, details


def section_batching(pipe, size, steps, guidance, args, timer):
    """Dynamic batching: B compatible jobs in one forward pass against B jobs one by one."""
    from workers.pipelines.text_to_image import TextToImage

    runner = our_runner(TextToImage, pipe, args.device)
    jobs = [t2i_params(size, steps, guidance, seed=i, prompt=PROMPTS[i % len(PROMPTS)])
            for i in range(max(args.batches))]
    stats = {}
    for batch in args.batches:
        chunk = jobs[:batch]
        if batch == 1:
            stats[batch] = timer.compare({"b": lambda: runner.run(chunk[0], {}, no_step)})["b"]
        else:
            stats[batch] = timer.compare({"b": lambda: run_batched(runner, chunk)})["b"]
    rate = {b: b * 1000 / s["p50"] for b, s in stats.items()}
    rows = []
    for batch in args.batches:
        if batch == 1:
            continue
        target = (">=", 1.5) if batch == 4 else None
        rows.append(Row(f"sd-turbo {size}x{size}, {steps} steps: dynamic batch of {batch} / "
                        f"one at a time (img/s)", rate[batch], rate[1], "img/s", target))
    return rows, {"per_call_ms": stats, "images_per_second": rate}


def section_svd(args, timer, scratch):
    import torch
    from PIL import Image

    from workers.pipelines.base import png_bytes
    from workers.pipelines.image_to_video import ImageToVideo

    device = args.device
    pipe = build(build_svd, scratch, args.smoke, device, args.half)
    runner = our_runner(ImageToVideo, pipe, device)
    width, height = (64, 64) if args.smoke else (1024, 576)
    frames = 4 if args.smoke else args.svd_frames
    image = Image.new("RGB", (width, height), (120, 130, 140))
    params = {"width": width, "height": height, "fps": 6, "motion_bucket_id": 127,
              "noise_aug_strength": 0.02, "num_inference_steps": args.svd_steps,
              "num_frames": frames, "decode_chunk_size": 8, "seed": 0}
    inputs = {"image": png_bytes(image)}

    def bare():
        return pipe(image=image, width=width, height=height, num_frames=frames,
                    num_inference_steps=params["num_inference_steps"], fps=6,
                    motion_bucket_id=127, noise_aug_strength=0.02, decode_chunk_size=8,
                    generator=torch.Generator(device).manual_seed(0)).frames[0]

    stats = timer.compare({"bare": bare, "ours": lambda: runner.run(params, inputs, no_step)})
    rows = [Row(f"svd {width}x{height}, {frames} frames, {params['num_inference_steps']} "
                f"steps: our path (with MP4) / bare", 1000 / stats["ours"]["p50"],
                1000 / stats["bare"]["p50"], "clips/s", (">=", 0.97))]
    del pipe, runner
    return rows, {"params": params, "stats": stats}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--smoke", action="store_true",
                        help="tiny configs and sizes: checks that the script runs, anywhere")
    parser.add_argument("--device", default=None, help="default: cuda when available")
    parser.add_argument("--dtype", choices=("fp16", "bf16"), default="fp16")
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode (max-autotune: faster, compiles for minutes)")
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--svd-frames", type=int, default=8)
    parser.add_argument("--svd-steps", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    import torch

    args = parse_args(argv)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not args.device.startswith("cuda") and not args.smoke:
        print("bench.gpu: no CUDA device; run with --smoke to check the script on the CPU",
              file=sys.stderr)
        return 2
    args.half = {"fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    if not args.device.startswith("cuda"):
        args.half = torch.float32  # CPU smoke runs: half precision is not the point there
        args.compile = False
    out = args.out or (RESULTS_DIR / "quick" if args.smoke else RESULTS_DIR)
    iters = args.iters or (2 if args.smoke else 10)
    warmup = args.warmup or (1 if args.smoke else 3)
    timer = Timer(args.device, warmup, iters)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    turbo_size = 64 if args.smoke else 512
    xl_size = 64 if args.smoke else 1024

    rows, details, started = [], {}, time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as scratch:
        scratch = Path(scratch)
        keep = {}
        if "sd-turbo" in args.only or "batching" in args.only:
            r, d = section_t2i("sd-turbo", build_sd_turbo, turbo_size, [1, 4], 0.0, args,
                               timer, scratch, keep) if "sd-turbo" in args.only else ([], {})
            rows += r
            details["sd-turbo"] = d
            if "batching" in args.only:
                pipe = keep.get("pipe") or build(build_sd_turbo, scratch, args.smoke,
                                                 args.device, args.half)
                r, d = section_batching(pipe, turbo_size, 4, 0.0, args, timer)
                rows += r
                details["batching"] = d
            keep.clear()
            _free(args.device)
            _progress(rows)
        if "sdxl" in args.only:
            r, d = section_t2i("sdxl", build_sdxl, xl_size, [4], 5.0, args, timer, scratch,
                               keep)
            rows += r
            details["sdxl"] = d
            keep.clear()
            _free(args.device)
            _progress(rows)
        if "svd" in args.only:
            r, d = section_svd(args, timer, scratch)
            rows += r
            details["svd"] = d
            _free(args.device)
    seconds = time.perf_counter() - started

    facts = machine_facts()
    if args.device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["cuda"] = torch.version.cuda
    name = "gpu-smoke" if args.smoke else "gpu"
    out.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": facts,
               "options": {k: (str(v) if not isinstance(v, (int, float, bool, list, type(None)))
                               else v) for k, v in vars(args).items()},
               "seconds": round(seconds, 1),
               "rows": [r.to_json() for r in rows], "details": details}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    try:
        ratio_chart(out / f"{name}.png", "GPU: our worker path and options, ratios", rows,
                    subtitle=f"{facts.get('gpu', args.device)} · torch {facts['torch']} · "
                             f"{args.dtype}{' · SMOKE (tiny configs)' if args.smoke else ''}")
    except Exception as exc:
        print(f"bench.gpu: could not draw {name}.png: {exc}", file=sys.stderr)
    print(f"{facts.get('gpu', args.device)} · torch {facts['torch']} · {seconds:.0f}s")
    print(format_table(rows))
    print(f"results: {out / (name + '.json')}")
    return 0


def _progress(rows):
    print(format_table(rows), file=sys.stderr, flush=True)


def _free(device: str):
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()



if __name__ == "__main__":
    sys.exit(main())
