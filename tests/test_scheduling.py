"""Scheduling with real workers: following a job (SSE), admission, priorities, fair
share, idempotency, webhooks, placement, the fallback gateway, and a burst."""

import hashlib
import hmac
import json
import statistics
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from support import job, make_key, submit_echo, wait_for, wait_status
from app.placement import Placement, Placer
from tasks.queues import depth

SLOW = {"steps": 400, "step_seconds": 0.05}  # 20 s unless canceled


def started_at(view) -> datetime:
    return datetime.fromisoformat(view["started_at"])


def read_sse(response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
    return events


def test_sse_streams_started_progress_and_the_result(http, gateway, auth, echo_worker):
    echo_worker("sched-sse")
    job_id = submit_echo(http, gateway, auth, steps=8, step_seconds=0.1)
    with http.get(f"{gateway}/jobs/{job_id}/events", headers=auth, stream=True,
                  timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = read_sse(response)
    names = [name for name, _ in events]
    assert names[0] in ("queued", "started") and names[-1] == "succeeded"
    steps = [data["step"] for name, data in events if name == "progress"]
    assert steps == sorted(steps) and steps[-1] == 8 and all(0 < s <= 8 for s in steps)
    assert all(data["total"] == 8 and data["progress"] == round(data["step"] / 8, 4)
               for name, data in events if name == "progress")
    final = events[-1][1]
    assert final["status"] == "succeeded" and final["result"]["images"][0]["url"]
    # A finished job's stream is its final state at once.
    with http.get(f"{gateway}/jobs/{job_id}/events", headers=auth, stream=True) as again:
        assert [n for n, _ in read_sse(again)] == ["succeeded"]


def test_failed_job_stream_ends_with_the_error(http, gateway, auth, echo_worker):
    echo_worker("sched-sse-fail")
    job_id = submit_echo(http, gateway, auth, fail="error")
    with http.get(f"{gateway}/jobs/{job_id}/events", headers=auth, stream=True) as response:
        name, data = read_sse(response)[-1]
    assert name == "failed" and data["error"] == "Echo pipeline error."


def test_priorities_order_waiting_jobs(http, gateway, auth, echo_worker):
    echo_worker("sched-prio")
    busy = submit_echo(http, gateway, auth, **SLOW)
    wait_status(http, gateway, auth, busy, "started")
    order = {p: submit_echo(http, gateway, auth, headers={"X-Priority": p})
             for p in ("low", "normal", "high")}
    http.post(f"{gateway}/jobs/{busy}/cancel", headers=auth)  # let them run
    done = {p: wait_status(http, gateway, auth, i, "succeeded") for p, i in order.items()}
    assert started_at(done["high"]) < started_at(done["normal"]) < started_at(done["low"])
    assert done["high"]["priority"] == "high"


def test_admission_refuses_a_wait_longer_than_the_clients_limit(http, gateway, auth, stack,
                                                               echo_worker):
    echo_worker("sched-admit")
    # An idle worker: the wait is zero, so even a tiny limit is accepted.
    quick = submit_echo(http, gateway, auth, headers={"X-Deadline-Seconds": "0.01"})
    assert wait_status(http, gateway, auth, quick, ("succeeded", "aborted"))
    busy = submit_echo(http, gateway, auth, **SLOW)
    wait_status(http, gateway, auth, busy, "started")
    queued_before = depth(stack.redis, "echo:echo")
    # With the only worker busy, any wait is longer than a microsecond.
    refused = http.post(f"{gateway}/echo", json={"prompt": "x"},
                        headers={**auth, "X-Deadline-Seconds": "0.000001"})
    assert refused.status_code == 503, stack.log("gateway")[-3000:]
    assert int(refused.headers["Retry-After"]) >= 1
    assert "estimated wait" in refused.json()["detail"]["msg"]
    assert depth(stack.redis, "echo:echo") == queued_before  # nothing was queued
    http.post(f"{gateway}/jobs/{busy}/cancel", headers=auth)


def test_idempotency_key_returns_the_same_job(http, gateway, auth):
    headers = {**auth, "Idempotency-Key": "order-42", "Prefer": "respond-async"}
    body = {"prompt": "same", "width": 64, "height": 64, "num_inference_steps": 2}
    first = http.post(f"{gateway}/text-to-image", json=body, headers=headers)
    second = http.post(f"{gateway}/text-to-image", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    other = http.post(f"{gateway}/text-to-image", json={**body, "prompt": "different"},
                      headers=headers)
    assert other.status_code == 409
    # Synchronous replays wait for, and answer with, the same result.
    sync = http.post(f"{gateway}/text-to-image", json=body,
                     headers={**auth, "Idempotency-Key": "order-42"})
    assert sync.status_code == 200
    done = job(http, gateway, auth, first.json()["id"])
    assert sync.json() == done["result"]


def test_fair_share_per_key(stack, sessions, http, echo_worker):
    gateway = stack.start_gateway("gateway-fair", env={"MAX_ACTIVE_JOBS_PER_KEY": "2"})
    echo_worker("sched-fair")
    mine = {"Authorization": f"Bearer {make_key(sessions, 'greedy')}"}
    others = {"Authorization": f"Bearer {make_key(sessions, 'patient')}"}
    ids = [submit_echo(http, gateway, mine, **SLOW) for _ in range(2)]
    third = http.post(f"{gateway}/echo", json={"prompt": "x"},
                      headers={**mine, "Prefer": "respond-async"})
    assert third.status_code == 429 and third.headers["Retry-After"]
    assert submit_echo(http, gateway, others)  # another key still gets in
    for job_id in ids:
        http.post(f"{gateway}/jobs/{job_id}/cancel", headers=mine)
    assert submit_echo(http, gateway, mine)  # back under its share


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint that fails its first delivery, then accepts."""

    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(500 if len(Receiver.received) == 1 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_is_signed_and_retried(http, gateway, auth, api_key, sessions, stack, receiver,
                                       echo_worker):
    from app.api.auth import hash_key
    from app.store.tables import ApiKey
    from app.webhooks import signing_secret

    echo_worker("sched-hook")
    job_id = submit_echo(http, gateway, auth, headers={"X-Webhook-Url": receiver,
                                                       "X-Webhook-Events": "succeeded"})
    wait_status(http, gateway, auth, job_id, "succeeded")
    wait_for(lambda: len(Receiver.received) >= 2, timeout=60, what="the retried delivery")
    (headers, body), (headers2, body2) = Receiver.received[:2]
    assert body == body2  # the same delivery, retried after the 500
    payload = json.loads(body)
    assert payload["event"] == "succeeded" and payload["job"]["id"] == job_id
    with sessions() as session:  # the key's own secret, derived from the gateway's
        key_id = session.query(ApiKey.id).filter_by(key_hash=hash_key(api_key)).scalar()
    secret = signing_secret(stack.env["WEBHOOK_SECRET"], key_id, 1)
    mac = hmac.new(secret.encode(), headers["X-Webhook-Timestamp"].encode() + b"." + body,
                   hashlib.sha256).hexdigest()
    assert headers["X-Webhook-Signature"] == f"sha256={mac}"


def test_a_webhook_of_the_queued_state_is_owed_in_the_statement_that_makes_the_job(
        http, gateway, auth, sessions, receiver, echo_worker):
    from sqlalchemy import select

    from app.store.tables import WebhookDelivery

    echo_worker("sched-queued-hook")
    job_id = submit_echo(http, gateway, auth, headers={"X-Webhook-Url": receiver,
                                                       "X-Webhook-Events": "queued"})
    with sessions() as session:  # there as the 202 is: written with the job
        owed = session.scalars(select(WebhookDelivery)
                               .where(WebhookDelivery.job_id == job_id)).all()
    assert [(d.event, d.url, d.payload["job"]["status"]) for d in owed] == [
        ("queued", receiver, "queued")]
    wait_for(lambda: any(json.loads(body)["job"]["id"] == job_id
                         for _, body in Receiver.received[1:]), timeout=60,
             what="the queued event's delivery")


def test_bad_job_options_are_400(http, gateway, auth):
    for headers in ({"X-Priority": "urgent"}, {"X-Webhook-Url": "ftp://x"},
                    {"X-Deadline-Seconds": "soon"}, {"X-Time-Limit-Seconds": "1e9"},
                    {"X-Webhook-Url": "http://h/x", "X-Webhook-Events": "everything"}):
        response = http.post(f"{gateway}/echo", json={"prompt": "x"}, headers={**auth, **headers})
        assert response.status_code == 400, headers


def test_placement_adds_a_worker_to_a_busy_model_then_lets_it_go(
        http, gateway, auth, admin_auth, stack, app, echo_worker):
    echo_worker("place-warm")  # holds echo warm
    echo_worker("place-dyn", "--models", "", "--dynamic", "echo")  # loads on demand
    ids = [submit_echo(http, gateway, auth, steps=10, step_seconds=0.1) for _ in range(8)]
    controller = Placer(stack.redis, app.extensions["celery"], app.extensions["catalog"],
                        Placement(target_wait_seconds=0.5, idle_seconds=1.0))
    decisions = wait_for(lambda: [d for d in controller.place() if d["action"] == "load"],
                         timeout=30, what="a load decision")
    assert decisions[0]["worker"] == "place-dyn" and decisions[0]["model_id"] == "echo"
    done = [wait_status(http, gateway, auth, i, "succeeded") for i in ids]
    assert {d["worker"] for d in done} == {"place-warm", "place-dyn"}
    unloads = wait_for(lambda: [d for d in controller.place() if d["action"] == "unload"],
                       timeout=30, what="an unload decision")
    assert unloads[0]["worker"] == "place-dyn"
    wait_for(lambda: not stack.heartbeat("place-dyn")["models"], timeout=30)
    shown = http.get(f"{gateway}/admin/placement", headers=admin_auth).json()
    assert {"load", "unload"} <= {d["action"] for d in shown["decisions"]}
    assert shown["models"]["echo:echo"] == ["place-warm"]


def test_fallback_gateway_runs_what_cannot_be_admitted_here(stack, http, gateway, auth,
                                                            sessions, echo_worker):
    from app.store.tables import Job

    echo_worker("sched-fallback")
    key = make_key(sessions, "fallback-account")
    local = stack.start_gateway("gateway-with-fallback", env={
        # Any wait at all is too long here: a busy worker sends the job elsewhere.
        "ADMISSION_MAX_WAIT_SECONDS": "0.000001", "FALLBACK_GATEWAY_URL": gateway,
        "FALLBACK_API_KEY": key})
    busy = submit_echo(http, local, auth, **SLOW)
    wait_status(http, local, auth, busy, "started")
    response = http.post(f"{local}/echo", json={"prompt": "elsewhere"}, headers=auth)
    http.post(f"{local}/jobs/{busy}/cancel", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["images"][0]["url"].startswith(gateway)
    with sessions() as session:
        ran = session.query(Job).filter(Job.ran_on == gateway).one()
        assert ran.ran_on == gateway and ran.status == "succeeded" and ran.queue == "fallback"


def test_burst_of_ten_times_capacity_is_queued_and_spread(http, gateway, auth, echo_worker,
                                                          capsys):
    workers = ["burst-a", "burst-b"]
    for name in workers:
        echo_worker(name)
    ids = [submit_echo(http, gateway, auth, steps=4, step_seconds=0.05)
           for _ in range(10 * len(workers))]  # every one accepted: no 503
    done = [wait_status(http, gateway, auth, i, "succeeded") for i in ids]
    spread = {w: sum(d["worker"] == w for d in done) for w in workers}
    assert all(count > 0 for count in spread.values())
    waits = sorted(d["timings"]["wait"] for d in done)
    with capsys.disabled():
        print(f"\nburst: spread {spread}, submit-to-start p50 {statistics.median(waits):.2f}s "
              f"p99 {waits[-1]:.2f}s")
