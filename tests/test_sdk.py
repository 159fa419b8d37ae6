"""The official livepeer-ai SDK, unmodified, as the client: only the URL and key change."""

from urllib.parse import urlparse

import pytest
import requests
from livepeer_ai import Livepeer
from livepeer_ai.models import components, errors

from media import image_size, png, video_facts


@pytest.fixture
def client(gateway, api_key):
    return Livepeer(http_bearer=api_key, server_url=gateway)


def fetch(url: str) -> bytes:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    return response.content


def test_text_to_image(client):
    res = client.generate.text_to_image(request=components.TextToImageParams(
        prompt="a red bicycle", width=64, height=48, num_inference_steps=2, seed=5,
        num_images_per_prompt=2))
    images = res.image_response.images
    assert [m.seed for m in images] == [5, 6] and all(m.nsfw is False for m in images)
    assert all(image_size(fetch(m.url)) == (64, 48) for m in images)


def test_image_to_image(client):
    res = client.generate.image_to_image(request=components.BodyGenImageToImage(
        prompt="make it blue", image=components.Image(
            file_name="in.png", content=png(64, 40)),
        num_inference_steps=4, strength=0.5, seed=9))
    media = res.image_response.images[0]
    assert media.seed == 9 and image_size(fetch(media.url)) == (64, 40)


def test_image_to_video(client):
    res = client.generate.image_to_video(request=components.BodyGenImageToVideo(
        image=components.BodyGenImageToVideoImage(file_name="in.png", content=png(64, 64)),
        width=64, height=64, fps=8, num_inference_steps=2, seed=3))
    media = res.video_response.images[0]
    facts = video_facts(fetch(media.url))
    assert urlparse(media.url).path.endswith(".mp4") and media.seed == 3
    assert facts["codec"] == "h264" and (facts["width"], facts["height"]) == (64, 64)
    assert facts["fps"] == 8 and facts["frames"] >= 2


def test_upscale(client):
    res = client.generate.upscale(request=components.BodyGenUpscale(
        prompt="sharp", image=components.BodyGenUpscaleImage(file_name="in.png",
                                                             content=png(32, 24)),
        num_inference_steps=2, seed=1))
    assert image_size(fetch(res.image_response.images[0].url)) == (128, 96)


def test_image_to_text(client):
    res = client.generate.image_to_text(request=components.BodyGenImageToText(
        image=components.BodyGenImageToTextImage(file_name="in.png", content=png(48, 32)),
        prompt="a photo of"))
    assert res.image_to_text_response.text.startswith("a photo of")


def test_bad_request_raises_http_error_with_our_message(client):
    with pytest.raises(errors.HTTPError) as raised:
        client.generate.text_to_image(request=components.TextToImageParams(
            prompt="", width=64, height=64))
    assert raised.value.data.detail.msg == "Prompt must be provided."


def test_wrong_key_raises_401(gateway):
    bad = Livepeer(http_bearer="not-a-key", server_url=gateway)
    with pytest.raises(errors.HTTPError) as raised:
        bad.generate.text_to_image(request=components.TextToImageParams(prompt="x"))
    assert raised.value.data.detail.msg == "Invalid bearer token."


def test_unavailable_model_is_sdk_error_503(client):
    with pytest.raises(errors.SDKError) as raised:
        client.generate.text_to_image(request=components.TextToImageParams(
            prompt="x", model_id="tiny/unserved", width=64, height=64))
    assert raised.value.status_code == 503
