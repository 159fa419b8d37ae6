"""The fallback gateway: what cannot be admitted here goes on to another Livepeer-style
gateway, here a real HTTP server on loopback standing in for go-livepeer. Multipart
bodies arrive whole; its refusals ({"error": {"message"}}) come back in our shape with a
status the SDK declares; a fallback that is down is a 503 to retry."""

import io
import json
import socket
import threading
from dataclasses import replace

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from media import png
from support import TEST_MODELS

ANSWER = {"images": [{"url": "https://elsewhere.example/a.png", "seed": 5, "nsfw": False}]}


class GoLivepeer:
    """A stand-in for a go-livepeer gateway: records each request, answers as told."""

    def __init__(self):
        self.seen: list[dict] = []
        self.status, self.body = 200, ANSWER
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @Request.application
    def app(self, request: Request) -> Response:
        self.seen.append({"path": request.path, "auth": request.headers.get("Authorization"),
                          "type": request.mimetype, "form": request.form.to_dict(),
                          "files": {n: (f.filename, f.read()) for n, f in request.files.items()},
                          "json": request.get_json(silent=True)})
        return Response(json.dumps(self.body), self.status, mimetype="application/json")


@pytest.fixture(scope="module")
def go_livepeer():
    server = GoLivepeer()
    yield server
    server.server.shutdown()


def gateway_app(stack, tmp_path_factory, url: str):
    """A gateway whose models file has an image-to-image model no worker holds, so that
    its jobs cannot be admitted here, and that falls back to `url`."""
    from app import create_app
    from app.settings import Settings

    models = tmp_path_factory.mktemp("fallback") / "models.json"
    models.write_text(json.dumps(TEST_MODELS + [
        {"pipeline": "image-to-image", "model_id": "tiny/nowhere", "price_per_unit": 1}]))
    settings = replace(Settings.from_env(), models_file=str(models), fallback_gateway_url=url,
                       fallback_api_key="their-key", sync_timeout_seconds=10)
    return create_app(settings, testing=True).test_client()


@pytest.fixture(scope="module")
def client(app, worker, stack, go_livepeer, tmp_path_factory):
    return gateway_app(stack, tmp_path_factory, go_livepeer.url)


def image_to_image(client, auth):
    return client.post("/image-to-image", headers=auth, content_type="multipart/form-data",
                       data={"prompt": "in blue", "model_id": "tiny/nowhere", "seed": "3",
                             "image": (io.BytesIO(png(24, 16)), "in.png")})


def test_multipart_is_forwarded_whole(client, auth, go_livepeer):
    go_livepeer.status, go_livepeer.body = 200, ANSWER
    response = image_to_image(client, auth)
    assert response.status_code == 200 and response.get_json() == ANSWER
    seen = go_livepeer.seen[-1]
    assert seen["path"] == "/image-to-image" and seen["auth"] == "Bearer their-key"
    assert seen["type"] == "multipart/form-data"
    assert seen["form"]["prompt"] == "in blue" and seen["form"]["seed"] == "3"
    assert seen["files"]["image"] == ("in.png", png(24, 16))


def test_json_is_forwarded_as_sent(client, auth, go_livepeer):
    go_livepeer.status, go_livepeer.body = 200, ANSWER
    body = {"prompt": "a cat", "model_id": "tiny/unserved", "width": 64, "height": 64}
    assert client.post("/text-to-image", json=body, headers=auth).status_code == 200
    assert go_livepeer.seen[-1]["json"] == body


@pytest.mark.parametrize("their_status, ours", [(400, 400), (422, 400), (401, 500),
                                                (503, 500), (500, 500)])
def test_a_go_livepeer_refusal_is_translated(client, auth, go_livepeer, their_status, ours):
    go_livepeer.status = their_status
    go_livepeer.body = {"error": {"message": "insufficient capacity"}}
    response = image_to_image(client, auth)
    assert response.status_code == ours
    assert response.get_json() == {"detail": {"msg": "The fallback gateway refused the job: "
                                                     "insufficient capacity"}}


def test_a_fallback_that_is_down_is_503_to_retry(app, worker, stack, auth, tmp_path_factory):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    response = image_to_image(gateway_app(stack, tmp_path_factory, url), auth)
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert "fallback gateway did not answer" in response.get_json()["detail"]["msg"]
