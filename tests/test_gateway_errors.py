"""Bad requests get a clear error in the SDK's shape, and leave nothing behind: no job
row, no queued message."""

import pytest
from sqlalchemy import func, select

from app.store.tables import Job

GOOD = {"prompt": "a cat", "width": 64, "height": 64, "num_inference_steps": 2}


@pytest.fixture
def client(app, worker):
    return app.test_client()


def queued_messages(stack) -> int:
    return sum(stack.redis.llen(key) for key in stack.redis.scan_iter("text-to-image:*")
               if stack.redis.type(key) == b"list")


@pytest.fixture
def nothing_left_behind(sessions, stack):
    """Asserts a test's requests created no job and queued no message."""
    def jobs():
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(Job))

    before = (jobs(), queued_messages(stack))
    yield
    assert (jobs(), queued_messages(stack)) == before


def detail_msg(response) -> str:
    body = response.get_json()
    assert set(body) == {"detail"} and set(body["detail"]) == {"msg"}, body
    return body["detail"]["msg"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic abc"}])
def test_missing_or_wrong_key_is_401(client, headers, nothing_left_behind):
    response = client.post("/text-to-image", json=GOOD, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert detail_msg(response)


@pytest.mark.parametrize("body, status, msg", [
    ({**GOOD, "prompt": ""}, 400, "Prompt must be provided."),
    ({k: v for k, v in GOOD.items() if k != "prompt"}, 400, "Prompt must be provided."),
    ({**GOOD, "width": 100}, 400, "divisible by 8"),
    ({**GOOD, "height": 4096}, 400, "height must be between"),
    ({**GOOD, "num_inference_steps": 0}, 400, "num_inference_steps"),
    ({**GOOD, "model_id": "no/such-model"}, 400, "Unknown model"),
    ({**GOOD, "model_id": "tiny/unserved"}, 503, "No worker can serve"),
    ({**GOOD, "prompt": "x" * 2001}, 400, "prompt is longer than 2000"),
    ({**GOOD, "negative_prompt": "x" * 2001}, 400, "negative_prompt is longer"),
    ({**GOOD, "num_images_per_prompt": 9}, 400, "num_images_per_prompt"),
    ({**GOOD, "loras": "not json"}, 400, "loras must be a JSON object"),
    ({**GOOD, "loras": '{"style": "high"}'}, 400, "loras must be a JSON object"),
    ({**GOOD, "loras": '{"pixel-art": 0.8}'}, 400, "Unknown LoRA adapter(s) pixel-art"),
])
def test_bad_input_is_rejected_with_a_message(client, auth, body, status, msg,
                                              nothing_left_behind):
    response = client.post("/text-to-image", json=body, headers=auth)
    assert response.status_code == status
    assert msg in detail_msg(response)
    if status == 503:
        assert int(response.headers["Retry-After"]) > 0


def test_schema_violation_is_422_with_locations(client, auth, nothing_left_behind):
    assert client.post("/text-to-image", json={**GOOD, "seed": -1},
                       headers=auth).status_code == 422
    response = client.post("/text-to-image", json={**GOOD, "width": "wide"}, headers=auth)
    assert response.status_code == 422
    detail = response.get_json()["detail"]
    assert detail[0]["loc"] == ["body", "width"] and detail[0]["type"] and detail[0]["msg"]


def test_text_postgresql_cannot_store_is_400(client, auth, nothing_left_behind):
    """PostgreSQL's JSON cannot hold U+0000 or an unpaired surrogate: refused with a
    message before anything is written (it was a 500 from the job's INSERT). A 400, not a
    422: the schema allows any string."""
    for path, body in (("/text-to-image", {**GOOD, "prompt": "a \x00 cat"}),
                       ("/text-to-image", {**GOOD, "negative_prompt": "\ud800 dog"}),
                       ("/llm", {"messages": [{"role": "user", "content": "hi\x00"}]})):
        response = client.post(path, json=body, headers=auth)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert "NUL" in detail_msg(response)


def test_non_json_body(client, auth, nothing_left_behind):
    assert client.post("/text-to-image", data="prompt=x", headers=auth).status_code == 400
    response = client.post("/text-to-image", data="{not json",
                           content_type="application/json", headers=auth)
    assert response.status_code == 400 and detail_msg(response)


def test_unknown_job_is_404_and_jobs_are_private(client, auth, sessions, http, gateway):
    from support import make_key

    assert client.get("/jobs/nope", headers=auth).status_code == 404
    made = http.post(f"{gateway}/text-to-image", json=GOOD,
                     headers={**auth, "Prefer": "respond-async"}).json()
    other = {"Authorization": f"Bearer {make_key(sessions, 'other')}"}
    assert client.get(f"/jobs/{made['id']}", headers=other).status_code == 404
    assert client.get(f"/jobs/{made['id']}", headers=auth).status_code == 200


def test_health_reports_database_broker_and_workers(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["database"] == "ok" and body["broker"] == "ok" and body["workers"] >= 1


def test_unknown_route_and_media_are_json_404(client):
    assert detail_msg(client.get("/nope")) == "Not found."
    assert client.get("/media/" + "0" * 48 + ".png").status_code == 404
    assert client.get("/media/../../etc/passwd").status_code == 404


def test_media_links_are_signed_and_expire(app, client):
    import time

    store = app.extensions["media"]
    name = store.name_for("job-for-links", 0, "image/png")
    store.put(name, b"\x89PNG not really")
    good = int(time.time()) + 60
    assert client.get(f"/media/{name}?expires={good}&sig={store.signature(name, good)}"
                      ).status_code == 200
    assert client.get(f"/media/{name}").status_code == 403
    assert client.get(f"/media/{name}?expires={good}&sig={'0' * 32}").status_code == 403
    past = int(time.time()) - 1
    response = client.get(f"/media/{name}?expires={past}&sig={store.signature(name, past)}")
    assert response.status_code == 403
    assert detail_msg(response) == "This link is invalid or has expired."
