"""An upload larger than INLINE_INPUT_MAX_BYTES is kept by the gateway and fetched by its
worker through a signed link (app/store/inputs.py, workers/inputs.py): it crosses
neither the broker nor the job's outbox row, the worker runs on exactly the bytes the
client sent, and the kept file is gone once the job is final. Real gateways, worker,
Redis and PostgreSQL; the worker's checks against a real HTTP server on loopback."""

import base64
import hashlib
import io
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from PIL import Image
from sqlalchemy import select

from app.store.tables import JobOutbox
from devstack import invariants
from support import set_consuming, wait_for
from tasks.messages import InputLink
from tasks.queues import priority_keys
from workers import inputs as worker_inputs

WORKER = "test-cpu-slot0"
QUEUE = "image-to-image:tiny/sd-img2img"
FIELDS = {"prompt": "blue", "num_inference_steps": "2", "seed": "7", "safety_check": "false"}
INLINE_MAX = 1024


def noise_png(width: int, height: int) -> bytes:
    """An image PNG cannot shrink: its size is about its pixels'."""
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def linking_gateway(stack, gateway):
    """A second gateway of the stack, which keeps every upload over 1 KiB; the first
    keeps them in the message up to the default 64 KiB."""
    return stack.start_gateway(name="gateway-links", workers=1,
                               env={"INLINE_INPUT_MAX_BYTES": str(INLINE_MAX)})


def submit(http, gateway, auth, image: bytes) -> str:
    response = http.post(f"{gateway}/image-to-image", data=FIELDS,
                         files={"image": ("in.png", image, "image/png")},
                         headers={**auth, "Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def final(http, gateway, auth, job_id: str) -> dict:
    return wait_for(lambda: (j := http.get(f"{gateway}/jobs/{job_id}", headers=auth).json())
                    ["status"] in ("succeeded", "failed") and j, timeout=120)


def images(http, job: dict) -> list[bytes]:
    return [http.get(m["url"]).content for m in job["result"]["images"]]


def queued_message(redis, job_id: str) -> tuple[bytes, dict]:
    """The job's Celery message as it waits in Redis: (its bytes, the job's message)."""
    for key in priority_keys(QUEUE):
        for raw in redis.lrange(key, 0, -1):
            body = base64.b64decode(json.loads(raw)["body"])
            [message], _, _ = json.loads(body)
            if message["job_id"] == job_id:
                return raw, message
    raise AssertionError(f"job {job_id} is not queued in {QUEUE}")


def test_a_large_upload_travels_as_a_link_and_the_worker_runs_on_its_bytes(
        http, gateway, linking_gateway, auth, stack, sessions):
    image = noise_png(64, 48)
    assert len(image) > INLINE_MAX
    media = invariants.media_of(stack)
    inline_job = final(http, gateway, auth, submit(http, gateway, auth, image))

    set_consuming(stack, WORKER, QUEUE, False)  # the job waits in Redis to be looked at
    try:
        job_id = submit(http, linking_gateway, auth, image)
        raw, message = queued_message(stack.redis, job_id)
        kept = media.path(media.input_name(job_id, "image"))
        assert message["inputs"] == {} and set(message["input_links"]) == {"image"}
        link = message["input_links"]["image"]
        assert link["url"].startswith(f"{linking_gateway}/media/")
        assert link["size"] == len(image)
        assert link["sha256"] == hashlib.sha256(image).hexdigest()
        assert kept is not None and kept.read_bytes() == image
        assert len(raw) < len(image)  # the upload's bytes are not in the broker
        with sessions() as session:
            kept_message = session.scalar(select(JobOutbox.message)
                                          .where(JobOutbox.job_id == job_id))
        assert kept_message["input_links"] == message["input_links"]
    finally:
        set_consuming(stack, WORKER, QUEUE, True)

    linked_job = final(http, linking_gateway, auth, job_id)
    assert inline_job["status"] == linked_job["status"] == "succeeded", linked_job
    assert images(http, linked_job) == images(http, inline_job)  # same input, same seed
    assert not kept.exists()  # no one's once the job is final


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(out, format="PNG")
    return out.getvalue()


def test_a_small_upload_stays_in_the_message(http, linking_gateway, auth, stack):
    image = small_png()
    assert len(image) <= INLINE_MAX
    set_consuming(stack, WORKER, QUEUE, False)
    try:
        job_id = submit(http, linking_gateway, auth, image)
        _, message = queued_message(stack.redis, job_id)
    finally:
        set_consuming(stack, WORKER, QUEUE, True)
    assert message["input_links"] == {}
    assert base64.b64decode(message["inputs"]["image"]) == image
    assert final(http, linking_gateway, auth, job_id)["status"] == "succeeded"


def test_the_sweep_removes_uploads_a_crash_left_behind_and_keeps_those_of_waiting_jobs(
        http, linking_gateway, auth, stack, controller):
    """A crash between a job's final commit and the removal of its uploads, or between
    keeping an upload and committing its job, leaves the file; the controller's sweep
    removes it once it is older than the grace, and never one of a job still waiting."""
    media = invariants.media_of(stack)
    hour_ago = time.time() - 3600
    ended = final(http, linking_gateway, auth, submit(http, linking_gateway, auth, small_png()))
    young = media.input_name(str(uuid.uuid4()), "image")  # its job is being written
    left = {job_id: media.input_name(job_id, "image") for job_id in (str(uuid.uuid4()),
                                                                      ended["id"])}
    set_consuming(stack, WORKER, QUEUE, False)
    try:
        waiting = submit(http, linking_gateway, auth, noise_png(64, 48))
        waiting_upload = media.path(media.input_name(waiting, "image"))
        for name in (*left.values(), young):
            media.put(name, b"left behind")
        for name in (waiting_upload.name, *left.values()):
            os.utime(media.path(name), (hour_ago, hour_ago))
        in_a_while = time.time() + 600  # younger than the grace however long the wait
        os.utime(media.path(young), (in_a_while, in_a_while))
        wait_for(lambda: not any(media.path(name) for name in left.values()), timeout=60,
                 what="the sweep to remove the uploads of jobs that ended")
        assert waiting_upload.exists() and media.path(young) is not None
    finally:
        set_consuming(stack, WORKER, QUEUE, True)
        for name in (*left.values(), young):  # whatever happened: no file for later tests
            media.discard(name)
    assert final(http, linking_gateway, auth, waiting)["status"] == "succeeded"
    assert not waiting_upload.exists()


@pytest.mark.fault
def test_the_sweep_outlives_a_media_store_that_is_away(stack, controller):
    """A sweep pass that cannot list the kept uploads (the store's folder gone: a mount
    lost) says so and goes on: the controller's later passes still sweep."""
    media = invariants.media_of(stack)
    aside = f"{media.directory}.aside"
    os.rename(media.directory, aside)
    open(media.directory, "w").close()  # a file where the folder was: nothing lists
    try:
        wait_for(lambda: "could not mend the kept uploads" in stack.log("controller"),
                 timeout=60, what="a sweep pass to meet the store away")
    finally:
        os.remove(media.directory)
        os.rename(aside, media.directory)
    orphan = media.input_name(str(uuid.uuid4()), "image")
    media.put(orphan, b"left behind")
    hour_ago = time.time() - 3600
    os.utime(media.path(orphan), (hour_ago, hour_ago))
    wait_for(lambda: media.path(orphan) is None, timeout=60,
             what="the controller to sweep again")


# -- the worker's side, against a server on loopback ----------------------------------------

class Served:
    """An HTTP server on loopback answering each GET with the next (status, body)."""

    def __init__(self, answers: list[tuple[int, bytes]]):
        self.answers, self.asked = list(answers), 0
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                served.asked += 1
                status, body = served.answers.pop(0)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/media/x.in"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve(monkeypatch):
    monkeypatch.setattr(worker_inputs, "RETRY_SECONDS", 0.0)
    servers = []

    def start(*answers):
        servers.append(Served(list(answers)))
        return servers[-1]

    yield start
    for served in servers:
        served.close()


def link_to(served: Served, data: bytes) -> InputLink:
    return InputLink(url=served.url, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_the_worker_takes_an_upload_that_is_what_its_link_says(serve):
    data = os.urandom(3000)
    served = serve((503, b""), (200, data))  # a gateway restarting: tried again
    with requests.Session() as http:
        assert worker_inputs.fetch(link_to(served, data), http) == data
    assert served.asked == 2


@pytest.mark.parametrize("answer", [(200, b"y" * 3000), (200, b"x" * 2999), (200, b"x" * 3001),
                                    (404, b""), (403, b"")],
                         ids=["other bytes", "shorter", "longer", "gone", "expired"])
def test_the_worker_refuses_an_upload_that_is_not_what_its_link_says(serve, answer):
    served = serve(answer)
    with requests.Session() as http, pytest.raises(worker_inputs.InputsUnavailable):
        worker_inputs.fetch(link_to(served, b"x" * 3000), http)
    assert served.asked == 1  # a refusal or wrong bytes are not tried again


def test_the_worker_gives_up_on_a_gateway_that_cannot_serve(serve):
    served = serve(*[(503, b"")] * worker_inputs.FETCH_TRIES)
    with requests.Session() as http, pytest.raises(worker_inputs.InputsUnavailable):
        worker_inputs.fetch(link_to(served, b"x"), http)
    assert served.asked == worker_inputs.FETCH_TRIES


def test_the_worker_fetches_only_http_links():
    link = InputLink(url="file:///etc/passwd", size=1, sha256="0" * 64)
    with requests.Session() as http, pytest.raises(worker_inputs.InputsUnavailable):
        worker_inputs.fetch(link, http)
