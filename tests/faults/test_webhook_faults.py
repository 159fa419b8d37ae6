"""Webhooks against hostile receivers and destinations, with the real webhooks process:
slow receivers hold up nothing but their own delivery, answers are read only so far,
private addresses are never reached, and each key signs with its own secret."""

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from app.store.tables import ApiKey, WebhookDelivery
from support import make_key, submit_echo, wait_for, wait_status

pytestmark = pytest.mark.fault


class Recorded(BaseHTTPRequestHandler):
    """Accepts at once, and keeps what it got."""

    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class Drip(BaseHTTPRequestHandler):
    """Answers one byte a second, forever: the delivery must be cut."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while True:
                self.wfile.write(b"X")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass

    def log_message(self, *args):
        pass


class Flood(BaseHTTPRequestHandler):
    """Answers 200 with an endless body: only so much of it may be read."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"x" * 65536)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def serve(handler, host="127.0.0.1"):
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers():
    started = []

    def start(handler, host="127.0.0.1"):
        server = serve(handler, host)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()


def deliveries(sessions, job_id):
    with sessions() as session:
        return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)))


def test_slow_receivers_hold_up_nothing_and_are_cut_at_the_deadline(
        http, gateway, auth, sessions, stack, servers, echo_worker):
    """One customer's receivers drip a byte a second, more of them than the process has
    threads: another customer's webhook still arrives at once (a key gets only its share
    of the threads), and each drip is cut at the deadline."""
    echo_worker("hook-slow")
    Recorded.received = []
    drips = [servers(Drip) for _ in range(6)]
    fine = servers(Recorded)
    slow_jobs = [submit_echo(http, gateway, auth, headers={
        "X-Webhook-Url": f"http://127.0.0.1:{d.server_port}/hook"}) for d in drips]
    for job_id in slow_jobs:
        wait_status(http, gateway, auth, job_id, "succeeded")
    wait_for(lambda: sum(d.attempts for j in slow_jobs for d in deliveries(sessions, j)) >= 2,
             timeout=30, what="the drips to hold their key's share of the threads")
    other = {"Authorization": f"Bearer {make_key(sessions, 'hook-other')}"}
    started = time.monotonic()
    job_id = submit_echo(http, gateway, other, headers={
        "X-Webhook-Url": f"http://127.0.0.1:{fine.server_port}/hook"})
    wait_for(lambda: Recorded.received, timeout=30, what="the prompt receiver's delivery")
    assert time.monotonic() - started < float(stack.env["WEBHOOK_TIMEOUT_SECONDS"])
    # Each drip was cut at the deadline, and will be tried again later.
    wait_for(lambda: all(d.last_error and "within" in d.last_error
                         for j in slow_jobs for d in deliveries(sessions, j)),
             timeout=60, what="the drips cut at the deadline")


def test_a_huge_answer_is_read_only_so_far(http, gateway, auth, sessions, servers, echo_worker):
    echo_worker("hook-flood")
    flood = servers(Flood)
    job_id = submit_echo(http, gateway, auth, headers={
        "X-Webhook-Url": f"http://127.0.0.1:{flood.server_port}/hook"})
    wait_for(lambda: [d.status for d in deliveries(sessions, job_id)] == ["delivered"],
             timeout=60, what="the delivery, its answer cut short")


@pytest.mark.parametrize("url", [
    "http://localhost:9/x", "http://127.0.0.1:9/x", "http://2130706433:9/x",
    "http://0x7f.1:9/x", "http://017700000001:9/x", "http://10.0.0.1/x",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/x",
    "http://[::ffff:127.0.0.1]:9/x", "http://[fe80::1]/x", "http://224.0.0.1/x",
    "http://0.0.0.0/x", "http://user:pass@example.com/x", "ftp://example.com/x",
])
def test_a_private_or_odd_destination_is_refused_when_the_job_comes(http, gateway, auth, url,
                                                                      echo_worker):
    """The stack allows 127.0.0.0/8 (its receivers listen there), so loopback in IPv4
    forms is let through here; every other form, and every other private range, is not."""
    echo_worker("hook-refuse")
    response = http.post(f"{gateway}/echo", json={"prompt": "x"},
                         headers={**auth, "X-Webhook-Url": url})
    allowed_loopback = url.startswith(("http://127.0.0.1", "http://2130706433",
                                       "http://0x7f.1", "http://017700000001"))
    assert response.status_code == (200 if allowed_loopback else 400), (url, response.text)


def test_each_key_signs_with_its_own_secret_and_a_rotated_one_stops(
        http, gateway, stack, sessions, servers, echo_worker):
    from app.webhooks import signing_secret
    from devstack.servers import python_env

    echo_worker("hook-keys")
    Recorded.received = []
    receiver = servers(Recorded)
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    keys = [make_key(sessions, f"hook-{n}") for n in range(2)]
    for key in keys:
        submit_echo(http, gateway, {"Authorization": f"Bearer {key}"},
                    headers={"X-Webhook-Url": url})
    wait_for(lambda: len(Recorded.received) >= 2, timeout=60, what="both deliveries")
    signatures = {h["X-Webhook-Signature"] for h, _ in Recorded.received}
    assert len(signatures) == 2
    with sessions() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.name == "hook-0"))
    rotated = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "keys",
                              "rotate-webhook-secret", str(key_id)],
                             env=python_env(stack.env), capture_output=True, text=True,
                             timeout=120)
    assert rotated.returncode == 0, rotated.stderr
    new_secret = rotated.stdout.split("webhook signing secret: ")[1].split()[0]
    assert new_secret == signing_secret(stack.env["WEBHOOK_SECRET"], key_id, 2)
    Recorded.received = []
    submit_echo(http, gateway, {"Authorization": f"Bearer {keys[0]}"},
                headers={"X-Webhook-Url": url})
    wait_for(lambda: Recorded.received, timeout=60, what="the delivery after rotation")
    headers, body = Recorded.received[0]
    expected = hmac.new(new_secret.encode(), headers["X-Webhook-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Webhook-Signature"] == f"sha256={expected}"
    assert json.loads(body)["event"] == "succeeded"
