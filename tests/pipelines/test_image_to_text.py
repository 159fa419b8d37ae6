"""image-to-text on a tiny BLIP: a caption as text, deterministic, the prompt begins it,
progress per token, a step callback that stops it, smoke."""

import pytest

from tasks.messages import TEXT
from tasks.pipelines.image_to_text import ImageToTextRequest
from workers.pipelines import pipeline_class
from workers.pipelines.image_to_text import MAX_NEW_TOKENS, ImageToText
from workers.runtime import JobInterrupted


@pytest.fixture(scope="module")
def pipe(load):
    return load(ImageToText, "tiny/blip")


def caption(pipe, image: bytes, on_step=lambda step, total: None, **params) -> str:
    [output] = pipe.run(ImageToTextRequest(**{"prompt": "", "seed": 3, **params}),
                        {"image": image}, on_step)
    assert output.content_type == TEXT and output.seed == params.get("seed", 3)
    return output.raw().decode()


def test_registered_under_its_livepeer_name():
    assert pipeline_class("image-to-text") is ImageToText


def test_a_caption_the_same_for_the_same_image(pipe, make_image):
    image = make_image(64, 48)
    first = caption(pipe, image)
    assert first and first == caption(pipe, image)


def test_the_prompt_begins_the_caption(pipe, make_image):
    assert caption(pipe, make_image(40, 40), prompt="a photo of").startswith("a photo of")


def test_each_token_is_a_step_and_the_callback_can_stop_it(pipe, make_image, steps):
    caption(pipe, make_image(32, 32), steps)
    assert steps and steps == [(i, MAX_NEW_TOKENS) for i in range(1, len(steps) + 1)]

    def cancel_at_second_token(step, total):
        if step == 2:
            raise JobInterrupted("canceled", "The job was canceled.")

    with pytest.raises(JobInterrupted):
        caption(pipe, make_image(32, 32), cancel_at_second_token)


def test_smoke_is_a_real_caption(pipe):
    [caption] = pipe.smoke()
    assert caption.content_type == TEXT and caption.seed == 0
