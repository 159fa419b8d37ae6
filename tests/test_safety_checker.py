"""safety_check drives the model's own safety checker, which only flags images (nsfw)."""

import pytest

from devstack.stack import MODELS_DIR
from tasks.pipelines.text_to_image import TextToImageRequest
from workers.pipelines import pipeline_class
from devstack.tiny import build_missing

PARAMS = {"prompt": "a cat", "negative_prompt": "", "width": 64, "height": 64,
          "guidance_scale": 7.5, "num_inference_steps": 2, "num_images_per_prompt": 2,
          "seed": 42}


@pytest.fixture(scope="module")
def models():
    build_missing(MODELS_DIR, ["tiny/sd", "tiny/sd-safety-flags-all"])
    load = pipeline_class("text-to-image")
    return {name: load(str(MODELS_DIR / "tiny" / name), "cpu")
            for name in ("sd", "sd-safety-flags-all")}


def run(pipe, safety_check: bool):
    return pipe.run(TextToImageRequest(**PARAMS, safety_check=safety_check), {},
                    lambda step, total: None)


def test_checker_flags_each_image_only_when_asked(models):
    flagged = run(models["sd-safety-flags-all"], True)
    unchecked = run(models["sd-safety-flags-all"], False)
    assert [o.nsfw for o in flagged] == [True, True]
    assert [o.nsfw for o in unchecked] == [False, False]
    # Flagging does not black the image out: the bytes are those of an unchecked run.
    assert [o.raw() for o in flagged] == [o.raw() for o in unchecked]


def test_model_without_a_checker_never_flags(models):
    assert [o.nsfw for o in run(models["sd"], True)] == [False, False]
