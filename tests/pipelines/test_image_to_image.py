"""image-to-image on a tiny Stable Diffusion: sizes, seeds, progress, smoke."""

import pytest
from PIL import Image

from media import png_size
from tasks.pipelines.image_to_image import ImageToImageRequest
from workers.pipelines import pipeline_class
from workers.pipelines.image_to_image import ImageToImage

PARAMS = {"prompt": "a red barn", "negative_prompt": "", "strength": 0.5, "guidance_scale": 7.5,
          "image_guidance_scale": 1.5, "num_inference_steps": 4, "num_images_per_prompt": 1,
          "seed": 7}


@pytest.fixture(scope="module")
def pipe(load):
    return load(ImageToImage, "tiny/sd-img2img")


def run(pipe, image: bytes, on_step=lambda step, total: None, **params):
    return pipe.run(ImageToImageRequest(**{**PARAMS, **params}), {"image": image}, on_step)


def test_registered_under_its_livepeer_name():
    assert pipeline_class("image-to-image") is ImageToImage


def test_outputs_keep_the_input_size_and_take_consecutive_seeds(pipe, make_image):
    outputs = run(pipe, make_image(64, 48), num_images_per_prompt=2)
    assert [o.seed for o in outputs] == [7, 8]
    assert [png_size(o) for o in outputs] == [(64, 48), (64, 48)]
    assert [o.nsfw for o in outputs] == [False, False]


def test_a_size_not_divisible_by_8_is_kept(pipe, make_image):
    assert png_size(run(pipe, make_image(70, 45))[0]) == (70, 45)


def test_a_photo_is_turned_upright_as_its_exif_says(pipe, make_image):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored sideways, shown rotated 90 degrees
    sideways = make_image(64, 48, "JPEG", exif=exif)
    assert png_size(run(pipe, sideways)[0]) == (48, 64)


def test_same_seed_same_bytes_other_seed_other_bytes(pipe, make_image):
    image = make_image(64, 48)
    first, again, other = (run(pipe, image, seed=seed)[0].raw() for seed in (3, 3, 4))
    assert first == again
    assert first != other


def test_progress_counts_only_the_steps_that_strength_keeps(pipe, make_image, steps):
    run(pipe, make_image(64, 48), steps, num_inference_steps=10, strength=0.5)
    assert steps == [(step, 5) for step in range(1, 6)]


def test_smoke_is_a_real_image_of_the_inputs_size(pipe):
    [image] = pipe.smoke()
    assert png_size(image) == (64, 64)


def test_instruct_pix2pix_takes_image_guidance_scale(tmp_path, make_image, steps):
    """An instruct-pix2pix checkpoint (no strength, an image guidance scale) loads and runs
    through the same module; AutoPipeline alone does not know it."""
    pipe = ImageToImage(str(build_tiny_pix2pix(tmp_path)), "cpu")
    assert "strength" not in pipe.accepts
    image = make_image(64, 48)
    first = run(pipe, image, steps, image_guidance_scale=1.5)
    assert png_size(first[0]) == (64, 48)
    assert steps[-1] == (4, 4)  # no strength: every step runs
    other = run(pipe, image, image_guidance_scale=3.0)
    assert first[0].raw() != other[0].raw()


def build_tiny_pix2pix(tmp_path):
    """tiny/sd's parts around a UNet that also takes the input image's latents (4 + 4)."""
    import torch
    from diffusers import (DDIMScheduler, StableDiffusionInstructPix2PixPipeline,
                           UNet2DConditionModel)

    from devstack.tiny.diffusion import tiny_clip_text_encoder, tiny_clip_tokenizer, tiny_vae

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=8,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
    )
    tokenizer = tiny_clip_tokenizer(tmp_path / "tokenizer")
    StableDiffusionInstructPix2PixPipeline(
        vae=tiny_vae(), text_encoder=tiny_clip_text_encoder(len(tokenizer)), tokenizer=tokenizer,
        unet=unet, scheduler=DDIMScheduler(steps_offset=1), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(tmp_path / "pix2pix")
    return tmp_path / "pix2pix"
