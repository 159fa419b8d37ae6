"""A text-to-image job end to end: HTTP -> gateway -> Celery queue -> a real worker
process running a real diffusers pipeline -> recorder -> PostgreSQL -> PNG."""

import io

import pytest
from PIL import Image
from sqlalchemy import select

from app.store.tables import Job, JobHistory
from support import wait_for
from tasks.live import read_progress

BODY = {"prompt": "a lighthouse at dawn", "width": 64, "height": 48,
        "num_inference_steps": 3, "guidance_scale": 7.5}


def post(http, gateway, auth, body, headers=None):
    return http.post(f"{gateway}/text-to-image", json=body, headers={**auth, **(headers or {})})


def fetch_png(http, url) -> bytes:
    response = http.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    return response.content


def test_sync_request_returns_png_of_asked_size(http, gateway, auth):
    response = post(http, gateway, auth, {**BODY, "seed": 7, "num_images_per_prompt": 2})
    assert response.status_code == 200, response.text
    images = response.json()["images"]
    assert [img["seed"] for img in images] == [7, 8]
    assert all(img["nsfw"] is False for img in images)
    for img in images:
        assert img["url"].startswith(gateway + "/media/")
        picture = Image.open(io.BytesIO(fetch_png(http, img["url"])))
        assert picture.format == "PNG" and picture.size == (64, 48)


def test_same_seed_same_bytes_and_missing_seed_is_drawn(http, gateway, auth):
    first = post(http, gateway, auth, {**BODY, "seed": 1234}).json()["images"][0]
    second = post(http, gateway, auth, {**BODY, "seed": 1234}).json()["images"][0]
    other = post(http, gateway, auth, {**BODY, "seed": 1235}).json()["images"][0]
    assert first["url"] != second["url"]  # two jobs, two files...
    assert fetch_png(http, first["url"]) == fetch_png(http, second["url"])  # ...same image
    assert fetch_png(http, first["url"]) != fetch_png(http, other["url"])
    drawn = post(http, gateway, auth, BODY).json()["images"][0]
    assert isinstance(drawn["seed"], int)


def test_async_job_is_followed_to_success(http, gateway, auth, stack):
    response = post(http, gateway, auth, {**BODY, "seed": 3},
                    headers={"Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert response.headers["Location"] == f"/jobs/{accepted['id']}"

    def finished():
        job = http.get(f"{gateway}/jobs/{accepted['id']}", headers=auth).json()
        return job if job["status"] in ("succeeded", "failed") else None

    job = wait_for(finished, timeout=120, what="job to finish")
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["worker"] == "test-cpu-slot0"
    assert [h["status"] for h in job["history"]] == ["queued", "started", "succeeded"]
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert job["result"]["images"][0]["seed"] == 3
    fetch_png(http, job["result"]["images"][0]["url"])
    # Progress came from the pipeline's step callback: every step was reported.
    assert read_progress(stack.redis, accepted["id"]) == {"step": 3.0, "total": 3.0,
                                                          "progress": 1.0}


def test_job_row_and_history_in_postgres(http, gateway, auth, sessions, api_key):
    from app.api.auth import hash_key
    from app.store.tables import ApiKey

    response = post(http, gateway, auth, {**BODY, "model_id": "", "seed": 11,
                                          "num_images_per_prompt": 2})
    assert response.status_code == 200
    with sessions() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(api_key)))
        job = session.scalars(select(Job).where(Job.api_key_id == key.id)
                              .order_by(Job.created_at.desc())).first()
        assert job.pipeline == "text-to-image"
        assert job.model_id == "tiny/sd"  # "" means the configured default
        assert job.status == "succeeded"
        assert job.billable_units == 64 * 48 * 2
        assert job.params["seed"] == 11 and job.params["prompt"] == BODY["prompt"]
        assert job.queue == "text-to-image:tiny/sd"
        assert [img["seed"] for img in job.result["images"]] == [11, 12]
        history = session.scalars(select(JobHistory).where(JobHistory.job_id == job.id)
                                  .order_by(JobHistory.at)).all()
        assert [e.status for e in history] == ["queued", "started", "succeeded"]
        assert history[0].at == job.created_at and history[-1].at == job.finished_at
        assert job.error is None and job.finished_at >= job.started_at


def test_keys_are_stored_hashed(sessions, api_key):
    from app.store.tables import ApiKey

    with sessions() as session:
        stored = [row for row in session.execute(select(ApiKey.__table__)).all()]
    assert stored and all(api_key not in map(str, row) for row in stored)
