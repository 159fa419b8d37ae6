"""Models loaded on demand: a cold job loads its model, the worker then consumes the
model's queue, and evicts it (least recently used) when another model needs the room.
Requests that cannot fit are sent back, and fail clearly when no worker has room."""

import os

import pytest

from devstack.stack import MODELS_DIR, wait_for
from support import active_queues, job

BODY = {"prompt": "a cold start", "width": 64, "height": 64, "num_inference_steps": 2}
TINY_SD_BYTES = 6 * 1024**2  # about what tiny/sd weighs (measured at load)


@pytest.fixture
def dynamic_worker(stack, gateway, tmp_path):
    """A worker with no warm model that loads text-to-image models on demand, with room
    for one tiny model and small requests: tiny/cold-a and tiny/cold-b are copies of
    tiny/sd under other names."""
    models = tmp_path / "models" / "tiny"
    models.mkdir(parents=True)
    for name in ("cold-a", "cold-b"):
        os.symlink(MODELS_DIR / "tiny" / "sd", models / name)
    proc = stack.start_worker("dyn-slot0", "--models", "", "--dynamic", "text-to-image",
                              "--memory-budget-gb", str(1.6 * TINY_SD_BYTES / 1024**3),
                              "--request-memory-scale", "0.001",
                              "--models-dir", str(tmp_path / "models"))
    yield proc
    proc.terminate()
    proc.wait(30)


def models_held(stack) -> dict:
    return {m["model_id"]: m for m in stack.heartbeat("dyn-slot0")["models"]}



def run_job(http, gateway, auth, model_id: str) -> dict:
    response = http.post(f"{gateway}/text-to-image", json={**BODY, "model_id": model_id},
                         headers={**auth, "Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    return wait_for(lambda: (j := job(http, gateway, auth, job_id))["status"]
                    in ("succeeded", "failed") and j, timeout=120)


def test_load_on_demand_then_subscribe_then_evict(http, gateway, auth, stack, app,
                                                  dynamic_worker):
    first = run_job(http, gateway, auth, "tiny/cold-a")
    assert first["status"] == "succeeded" and first["worker"] == "dyn-slot0"
    assert first["timings"]["load"] > 0  # loaded for this job, and the time measured
    held = models_held(stack)
    assert held["tiny/cold-a"]["ready"] and not held["tiny/cold-a"]["warm"]
    assert held["tiny/cold-a"]["load_seconds"] > 0
    wait_for(lambda: "text-to-image:tiny/cold-a" in active_queues(stack, "dyn-slot0"), timeout=30)

    second = run_job(http, gateway, auth, "tiny/cold-a")
    assert second["status"] == "succeeded" and second["timings"]["load"] == 0

    third = run_job(http, gateway, auth, "tiny/cold-b")  # no room for both: a is evicted
    assert third["status"] == "succeeded" and third["timings"]["load"] > 0
    assert set(models_held(stack)) == {"tiny/cold-b"}
    wait_for(lambda: (q := active_queues(stack, "dyn-slot0")) and "text-to-image:tiny/cold-a" not in q
             and "text-to-image:tiny/cold-b" in q, timeout=30)


def test_routing_prefers_the_warm_queue(http, gateway, auth, sessions, dynamic_worker):
    from app.store.tables import Job

    cold = run_job(http, gateway, auth, "tiny/cold-a")
    warm = run_job(http, gateway, auth, "tiny/cold-a")
    with sessions() as session:
        assert session.get(Job, cold["id"]).queue == "text-to-image:*"
        assert session.get(Job, warm["id"]).queue == "text-to-image:tiny/cold-a"


def test_request_too_big_for_any_worker_fails_clearly(http, gateway, auth, dynamic_worker):
    response = http.post(f"{gateway}/text-to-image", headers=auth,
                         json={**BODY, "model_id": "tiny/cold-a", "width": 1024,
                               "height": 1024, "num_images_per_prompt": 8})
    assert response.status_code == 500
    assert response.json()["detail"]["msg"] == "No worker has room for this job."
    # The worker is still healthy and serves a request that fits.
    assert run_job(http, gateway, auth, "tiny/cold-a")["status"] == "succeeded"
