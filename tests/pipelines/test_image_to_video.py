"""image-to-video on a tiny Stable Video Diffusion, and the mp4 it is answered with."""

import io
from fractions import Fraction

import av
import pytest
from PIL import Image

from tasks.pipelines.image_to_video import ImageToVideoRequest
from workers.pipelines import pipeline_class
from workers.pipelines.image_to_video import ImageToVideo
from devstack.tiny.diffusion import TINY_SVD_FRAMES
from workers.video import encode_mp4

PARAMS = {"width": 64, "height": 48, "fps": 8, "motion_bucket_id": 127,
          "noise_aug_strength": 0.02, "num_inference_steps": 2, "seed": 21}


@pytest.fixture(scope="module")
def pipe(load):
    return load(ImageToVideo, "tiny/svd")


def run(pipe, image: bytes, on_step=lambda step, total: None, **params):
    return pipe.run(ImageToVideoRequest(**{**PARAMS, **params}), {"image": image}, on_step)


def probe(data: bytes) -> dict:
    """What a player sees in an mp4: codec, pixel format, rate, and each decoded frame."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return {"codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                "rate": stream.average_rate, "sizes": {(f.width, f.height) for f in frames},
                "times": [f.pts * f.time_base for f in frames]}


def test_registered_under_its_livepeer_name():
    assert pipeline_class("image-to-video") is ImageToVideo


def test_one_h264_mp4_of_the_asked_size_and_rate(pipe, make_image):
    outputs = run(pipe, make_image(80, 60), num_frames=3)
    assert len(outputs) == 1
    video = outputs[0]
    assert (video.content_type, video.seed, video.nsfw) == ("video/mp4", 21, False)
    seen = probe(video.raw())
    assert seen["codec"] == "h264" and seen["pix_fmt"] == "yuv420p"
    assert seen["rate"] == 8
    assert seen["sizes"] == {(64, 48)}
    assert seen["times"] == [0, Fraction(1, 8), Fraction(2, 8)]


def test_frames_default_to_the_models_own_count(pipe, make_image):
    assert len(probe(run(pipe, make_image(64, 48))[0].raw())["times"]) == TINY_SVD_FRAMES


def test_same_seed_same_bytes_other_seed_other_bytes(pipe, make_image):
    image = make_image(64, 48)
    first, again, other = (run(pipe, image, seed=seed)[0].raw() for seed in (1, 1, 2))
    assert first == again
    assert first != other


def test_progress_reaches_the_total(pipe, make_image, steps):
    run(pipe, make_image(64, 48), steps, num_inference_steps=3)
    assert steps == [(1, 3), (2, 3), (3, 3)]


def test_smoke_is_a_real_two_frame_video(pipe):
    [video] = pipe.smoke()
    seen = probe(video.data)
    assert video.content_type == "video/mp4"
    assert seen["sizes"] == {(64, 64)} and len(seen["times"]) == 2


def test_encode_mp4_honours_fps_and_crops_odd_sizes_to_even():
    frames = [Image.new("RGB", (33, 17), (40 * i, 90, 160)) for i in range(5)]
    data = encode_mp4(frames, fps=12)
    assert data[4:8] == b"ftyp"
    seen = probe(data)
    assert seen["rate"] == 12
    assert seen["sizes"] == {(32, 16)}
    assert seen["times"] == [Fraction(i, 12) for i in range(5)]
    assert encode_mp4(frames, fps=12) == data
