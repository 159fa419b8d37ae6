"""upscale on a tiny x4 upscaler: 4x sizes, seeds, progress, smoke."""

import pytest

from media import png_size
from tasks.pipelines.upscale import UpscaleRequest
from workers.pipelines import pipeline_class
from workers.pipelines.upscale import Upscale

PARAMS = {"prompt": "a sharp photo", "num_inference_steps": 2, "seed": 11}


@pytest.fixture(scope="module")
def pipe(load):
    return load(Upscale, "tiny/sd-x4-upscaler")


def run(pipe, image: bytes, on_step=lambda step, total: None, **params):
    return pipe.run(UpscaleRequest(**{**PARAMS, **params}), {"image": image}, on_step)


def test_registered_under_its_livepeer_name():
    assert pipeline_class("upscale") is Upscale


def test_one_png_four_times_the_input(pipe, make_image):
    outputs = run(pipe, make_image(32, 24))
    assert len(outputs) == 1
    assert outputs[0].seed == 11 and outputs[0].nsfw is False
    assert png_size(outputs[0]) == (128, 96)


def test_exactly_four_times_a_size_not_divisible_by_8(pipe, make_image):
    assert png_size(run(pipe, make_image(30, 21))[0]) == (120, 84)


def test_same_seed_same_bytes_other_seed_other_bytes(pipe, make_image):
    image = make_image(32, 24)
    first, again, other = (run(pipe, image, seed=seed)[0].raw() for seed in (5, 5, 6))
    assert first == again
    assert first != other


def test_progress_reaches_the_total(pipe, make_image, steps):
    run(pipe, make_image(32, 24), steps, num_inference_steps=3)
    assert steps == [(1, 3), (2, 3), (3, 3)]


def test_smoke_is_a_real_4x_upscale(pipe):
    [image] = pipe.smoke()
    assert png_size(image) == (128, 128)
