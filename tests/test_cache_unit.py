"""Pure logic of the model cache and the request estimate (no models loaded)."""

from tasks.pipelines.base import BYTES_PER_OUTPUT_PIXEL
from tasks.pipelines.image_to_video import ImageToVideoRequest
from tasks.pipelines.text_to_image import TextToImageRequest
from workers.cache import LoadedModel, ModelCache
from workers.pipelines.base import Pipeline


def cache_with(budget, *models):
    cache = ModelCache("/nonexistent", "cpu", budget)
    for i, (name, size, warm) in enumerate(models):
        # A runner never loaded (no model): it holds nothing beside its weights.
        entry = LoadedModel("text-to-image", name, warm, runner=Pipeline.__new__(Pipeline),
                            bytes=size,
                            last_used=float(i))
        cache.models[("text-to-image", name)] = entry
    return cache


def test_no_budget_means_no_eviction():
    assert cache_with(None, ("a", 10, False)).plan_room(10**12) == []


def test_evicts_least_recently_used_on_demand_models_never_warm_ones():
    cache = cache_with(100, ("warm", 40, True), ("old", 20, False), ("new", 30, False))
    assert cache.free_bytes() == 10
    assert [m.model_id for m in cache.plan_room(25)] == ["old"]
    assert [m.model_id for m in cache.plan_room(55)] == ["old", "new"]
    assert cache.plan_room(61) is None  # only the warm model would make room


def test_keep_is_never_planned_for_eviction():
    cache = cache_with(100, ("old", 50, False), ("new", 40, False))
    keep = cache.models[("text-to-image", "old")]
    assert [m.model_id for m in cache.plan_room(40, keep=keep)] == ["new"]


def test_request_estimate_scales_with_pixels_images_and_frames():
    base = TextToImageRequest(width=64, height=32).request_bytes({})
    assert base == 64 * 32 * BYTES_PER_OUTPUT_PIXEL
    assert TextToImageRequest(width=64, height=32,
                              num_images_per_prompt=3).request_bytes({}) == 3 * base
    video = ImageToVideoRequest(width=64, height=32, num_frames=4).request_bytes({})
    assert video == 4 * base
