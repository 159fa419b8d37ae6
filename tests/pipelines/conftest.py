"""In-process tests of the pipeline modules on tiny random-weight models, built once per
session from configs into a temporary folder. No server, no queue, no hub."""

import io
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub

TINY_MODELS = ["tiny/sd-img2img", "tiny/svd", "tiny/sd-x4-upscaler", "tiny/blip"]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    from devstack.tiny import build_missing

    directory = tmp_path_factory.mktemp("models")
    build_missing(directory, TINY_MODELS)
    return directory


@pytest.fixture(scope="session")
def load(models_dir):
    """load(pipeline_class, model_id) -> the pipeline, on the CPU."""
    return lambda cls, model_id: cls(str(models_dir / model_id), "cpu")


def image_png(width: int, height: int, fmt: str = "PNG", **save) -> bytes:
    """A gradient (not a flat colour, so that a change of seed shows in the output)."""
    from PIL import Image

    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


@pytest.fixture
def make_image():
    return image_png


class Steps(list):
    """An on_step callback that records what it was told."""

    def __call__(self, step: int, total: int) -> None:
        self.append((step, total))


@pytest.fixture
def steps():
    return Steps()
