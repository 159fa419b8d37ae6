"""audio-to-text, text-to-speech, llm and segment-anything-2 over plain HTTP through a
real worker process: formats, refusals in the statuses Livepeer declares, billing, and
the llm's stream."""

import io
import json

import pytest

from media import audio, png, wav_facts
from support import wait_status


def transcribe(http, gateway, auth, data: bytes, filename="in.wav", headers=None, **fields):
    return http.post(f"{gateway}/audio-to-text", data=fields,
                     files={"audio": (filename, data, "application/octet-stream")},
                     headers={**auth, **(headers or {})})


@pytest.mark.parametrize("fmt", ["mp3", "webm", "m4a"])  # wav: the billing test
def test_audio_in_the_formats_clients_send(http, gateway, auth, fmt):
    response = transcribe(http, gateway, auth, audio(fmt, 1.5), f"in.{fmt}",
                          return_timestamps="false")
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"text", "chunks"} and response.json()["chunks"] == []


def test_audio_is_billed_by_its_duration_in_milliseconds(http, gateway, auth):
    response = transcribe(http, gateway, auth, audio("wav", 2.5),
                          headers={"Prefer": "respond-async"}, return_timestamps="word")
    assert response.status_code == 202, response.text
    job = wait_status(http, gateway, auth, response.json()["id"], ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert job["billable_units"] == 2500 and job["progress"] == 1.0


def test_audio_refusals_are_the_statuses_livepeer_declares(http, gateway, auth):
    not_audio = transcribe(http, gateway, auth, b"RIFF but not really audio")
    assert not_audio.status_code == 415 and "audio" in not_audio.json()["detail"]["msg"]
    an_image = transcribe(http, gateway, auth, png(), "in.png")
    assert an_image.status_code == 415
    bad_option = transcribe(http, gateway, auth, audio("wav", 0.5), return_timestamps="yes")
    assert bad_option.status_code == 400
    too_big = transcribe(http, gateway, auth, b"\0" * (10 * 1024 * 1024 + 1))
    assert too_big.status_code == 413


def test_speech_is_a_wav_billed_by_characters(http, gateway, auth):
    text = "Hello there. How are you today?"
    response = http.post(f"{gateway}/text-to-speech", json={"text": text, "model_id": ""},
                         headers={**auth, "Prefer": "respond-async"})
    job = wait_status(http, gateway, auth, response.json()["id"], ("succeeded", "failed"))
    assert job["status"] == "succeeded" and job["billable_units"] == len(text)
    facts = wav_facts(http.get(job["result"]["audio"]["url"]).content)
    assert facts["rate"] == 44_100 and facts["seconds"] > 0.5
    # The same request (seed) gives the same WAV.
    again = http.post(f"{gateway}/text-to-speech", json={"text": text, "seed": 0},
                      headers=auth).json()
    first = http.post(f"{gateway}/text-to-speech", json={"text": text, "seed": 0},
                      headers=auth).json()
    assert http.get(again["audio"]["url"]).content == http.get(first["audio"]["url"]).content


def test_empty_text_is_400(http, gateway, auth):
    response = http.post(f"{gateway}/text-to-speech", json={"text": "  "}, headers=auth)
    assert response.status_code == 400
    assert response.json() == {"detail": {"msg": "Text must be provided."}}


def test_text_the_model_cannot_speak_is_400_from_the_worker(http, gateway, auth):
    """Only the model knows its vocabulary: the worker refuses, the job fails, and the
    synchronous client is answered 400 with the model's reason, not a 500."""
    response = http.post(f"{gateway}/text-to-speech", json={"text": "\U0001f600\u2603"},
                         headers=auth)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "detail": {"msg": "The text has nothing this model's vocabulary can speak."}}


LLM = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 10,
       "temperature": 0}


def test_llm_bills_the_tokens_it_processed_up_to_the_intake_bound(http, gateway, auth,
                                                                  sessions):
    from app.store.tables import Job

    response = http.post(f"{gateway}/llm", json=LLM, headers={**auth, "Prefer": "respond-async"})
    job = wait_status(http, gateway, auth, response.json()["id"], ("succeeded", "failed"))
    usage = job["result"]["usage"]
    assert job["billable_units"] == usage["prompt_tokens"] + usage["completion_tokens"]
    with sessions() as session:
        params = session.get(Job, job["id"]).params
    assert params["max_tokens"] == 10 and params["model_name"] == "tiny/llama"


def test_llm_streams_chunks_then_done(http, gateway, auth):
    whole = http.post(f"{gateway}/llm", json=LLM, headers=auth).json()
    with http.post(f"{gateway}/llm", json={**LLM, "stream": True}, headers=auth,
                   stream=True) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines(decode_unicode=True)
                 if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert len(chunks) > 2
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"] == whole["usage"]


def test_llm_refusals(http, gateway, auth):
    for body in ({**LLM, "messages": []}, {**LLM, "max_tokens": 5000},
                 {**LLM, "temperature": 3}, {**LLM, "top_p": 0}):
        response = http.post(f"{gateway}/llm", json=body, headers=auth)
        assert response.status_code == 400, body
    wrong_role = http.post(f"{gateway}/llm", json={"messages": [{"role": "robot",
                                                                 "content": "x"}]},
                           headers=auth)
    assert wrong_role.status_code == 422


def segment(http, gateway, auth, image, **fields):
    return http.post(f"{gateway}/segment-anything-2", data=fields,
                     files={"image": ("in.png", image, "image/png")}, headers=auth)


def test_segmentation_masks_at_the_image_size_billed_by_its_pixels(http, gateway, auth):
    response = segment(http, gateway, auth, png(48, 32), box="[[2, 2, 20, 20], [10, 10, 40, 30]]",
                       multimask_output="false", return_logits="false")
    assert response.status_code == 200, response.text
    masks = json.loads(response.json()["masks"])
    assert (len(masks), len(masks[0]), len(masks[0][0]), len(masks[0][0][0])) == (2, 1, 32, 48)
    assert {v for row in masks[0][0] for v in row} <= {0.0, 1.0}
    job = http.post(f"{gateway}/segment-anything-2", data={"point_coords": "[[1, 1]]",
                                                           "point_labels": "[1]"},
                    files={"image": ("in.png", png(48, 32), "image/png")},
                    headers={**auth, "Prefer": "respond-async"}).json()
    assert wait_status(http, gateway, auth, job["id"], "succeeded")["billable_units"] == 48 * 32


def test_segmentation_refusals_are_400(http, gateway, auth):
    assert segment(http, gateway, auth, png(), point_coords="[[1, 2]]").status_code == 400
    assert segment(http, gateway, auth, png(), box="not json").status_code == 400
    assert segment(http, gateway, auth, b"GIF89a").status_code == 400

