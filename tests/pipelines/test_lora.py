"""LoRA adapters on the tiny SD, offline, same seed throughout: no LoRA is the base image,
scale 0 is the base image, scale 1 another one, and after a LoRA job the next plain job
is the base image again. Adapters from the models file, or by id where allowed."""

import pytest

from devstack.stack import MODELS_DIR
from devstack.tiny import build_missing
from tasks.catalog import ModelEntry
from tasks.pipelines.base import InvalidRequest
from tasks.pipelines.prompted import resolve_loras
from tasks.pipelines.text_to_image import TextToImageRequest
from workers.pipelines.base import RunnerContext
from workers.pipelines.text_to_image import TextToImage

LORA = "tiny/sd-style-lora"


@pytest.fixture(scope="module")
def pipe():
    build_missing(MODELS_DIR, ["tiny/sd", LORA])
    return TextToImage(str(MODELS_DIR / "tiny/sd"), "cpu", RunnerContext(MODELS_DIR))


def image(pipe, listed=None, unlisted=None) -> bytes:
    request = TextToImageRequest(prompt="a fox in the snow", width=64, height=64,
                                 num_inference_steps=3, seed=7, lora_weights=listed or {},
                                 lora_ids=unlisted or {})
    return pipe.run(request, {}, lambda step, total: None)[0].raw()


def test_scales_and_the_base_model_after_a_lora_job(pipe):
    base = image(pipe)
    assert image(pipe, {LORA: 0.0}) == base
    styled = image(pipe, {LORA: 1.0})
    assert styled != base
    assert image(pipe) == base  # the next job sees the base model
    assert image(pipe, {LORA: 1.0}) == styled  # the adapter kept loaded: the same again
    assert pipe.extra_bytes() > 0  # and counted in the slot's memory


def test_an_id_the_models_file_does_not_list_needs_the_operator(pipe):
    with pytest.raises(InvalidRequest, match="not offered"):
        image(pipe, unlisted={LORA: 1.0})
    assert image(pipe) == image(pipe, {LORA: 0.0})  # nothing left switched on


def test_allowed_ids_load_from_the_local_store_and_a_missing_one_is_refused():
    build_missing(MODELS_DIR, ["tiny/sd", LORA])
    allowing = TextToImage(str(MODELS_DIR / "tiny/sd"), "cpu",
                           RunnerContext(MODELS_DIR, local_loras=True, lora_cache_bytes=1))
    by_id = image(allowing, unlisted={LORA: 1.0})
    assert by_id != image(allowing)
    with pytest.raises(InvalidRequest, match="could not be loaded"):
        image(allowing, unlisted={"nobody/no-such-lora": 1.0})
    # A second adapter (the same weights by their path) pushes the first out: the
    # cache holds no more than its bytes allow, the adapter in use kept.
    image(allowing, unlisted={str(MODELS_DIR / LORA): 1.0})
    assert len(allowing.loras.loaded) == 1


def test_the_gateway_resolves_names_from_the_models_file():
    entry = ModelEntry(pipeline="text-to-image", model_id="tiny/sd",
                       loras={"style": "tiny/sd-style-lora"})
    assert resolve_loras('{"style": 0.5, "owner/other": 1}', entry) == (
        {"tiny/sd-style-lora": 0.5}, {"owner/other": 1.0})
    assert resolve_loras("", entry) == ({}, {})
    for bad in ('{"pixel-art": 1}', '{"style": "high"}', "[1]", '{"style": 99}'):
        with pytest.raises(InvalidRequest):
            resolve_loras(bad, entry)
