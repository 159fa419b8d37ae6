"""The official livepeer-ai SDK, unmodified, as the client: only the URL and key change."""

from urllib.parse import urlparse

import pytest
import requests
from livepeer_ai import Livepeer
from livepeer_ai.models import components, errors

from media import audio, image_size, png, video_facts, wav_facts


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


def test_audio_to_text(client):
    res = client.generate.audio_to_text(request=components.BodyGenAudioToText(
        audio=components.Audio(file_name="in.mp3", content=audio("mp3", 2.0)),
        return_timestamps="true"))
    answer = res.text_response
    assert isinstance(answer.text, str)
    assert all(len(chunk.timestamp) == 2 for chunk in answer.chunks)


def test_text_to_speech(client):
    res = client.generate.text_to_speech(request=components.TextToSpeechParams(
        text="hello there", description="A female speaker, fast."))
    facts = wav_facts(fetch(res.audio_response.audio.url))
    assert facts["rate"] == 44_100 and facts["channels"] == 1 and facts["seconds"] > 0.1


def test_llm(client):
    res = client.generate.llm(request=components.LLMRequest(
        messages=[components.LLMMessage(role="user", content="hello")], max_tokens=8,
        temperature=0))
    answer = res.llm_response
    assert answer.model == "tiny/llama" and answer.choices[0].message.role == "assistant"
    usage = answer.usage
    assert 0 < usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_segment_anything_2(client):
    res = client.generate.segment_anything2(request=components.BodyGenSegmentAnything2(
        image=components.BodyGenSegmentAnything2Image(file_name="in.png", content=png(40, 30)),
        point_coords="[[10, 12]]", point_labels="[1]", multimask_output=True))
    masks = res.masks_response
    import json

    assert len(json.loads(masks.scores)) == 3  # three masks, sorted by score
    scores = json.loads(masks.scores)
    assert scores == sorted(scores, reverse=True)
    shape = json.loads(masks.masks)
    assert (len(shape), len(shape[0]), len(shape[0][0])) == (3, 30, 40)


def test_unsupported_image_is_a_typed_400(client):
    with pytest.raises(errors.HTTPError) as raised:
        client.generate.upscale(request=components.BodyGenUpscale(
            prompt="x", image=components.BodyGenUpscaleImage(file_name="in.gif",
                                                             content=b"GIF89a not really")))
    assert "Unsupported image format" in raised.value.data.detail.msg


def test_undecodable_audio_is_a_typed_415(client):
    with pytest.raises(errors.HTTPError) as raised:
        client.generate.audio_to_text(request=components.BodyGenAudioToText(
            audio=components.Audio(file_name="in.mp3", content=b"not audio at all")))
    assert "audio" in raised.value.data.detail.msg


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


@pytest.fixture
def openai_client(gateway, api_key):
    import openai

    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=api_key, max_retries=0)


def test_openai_chat_completion(openai_client):
    answer = openai_client.chat.completions.create(
        model="tiny/llama", messages=[{"role": "user", "content": "hi"}], max_tokens=6,
        temperature=0, seed=1)
    assert answer.object == "chat.completion" and answer.model == "tiny/llama"
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage.completion_tokens <= 6


def test_openai_chat_completion_streamed(openai_client):
    """Token by token as they are generated, the same text as the answer in one piece."""
    request = dict(model="", messages=[{"role": "user", "content": "tell me"}],
                   max_tokens=12, temperature=0)
    whole = openai_client.chat.completions.create(**request).choices[0].message.content
    chunks = list(openai_client.chat.completions.create(**request, stream=True))
    assert len(chunks) > 2 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].usage.completion_tokens <= 12
