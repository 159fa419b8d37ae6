"""Helpers for tests that run the real stack: servers, processes and waiting."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import redis as redis_lib
import requests

from devstack.servers import Postgres, Redis, free_port, python_env, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / ".run" / "models"  # built once, reused across runs (deterministic)

TEST_MODELS = [
    {"pipeline": "text-to-image", "model_id": "tiny/sd", "warm": True, "default": True,
     "price_per_unit": 1000, "pixels_per_unit": 1},
    {"pipeline": "image-to-image", "model_id": "tiny/sd-img2img", "warm": True,
     "price_per_unit": 1000, "pixels_per_unit": 1},
    {"pipeline": "image-to-video", "model_id": "tiny/svd", "warm": True,
     "price_per_unit": 10, "pixels_per_unit": 1},
    {"pipeline": "upscale", "model_id": "tiny/sd-x4-upscaler", "warm": True,
     "price_per_unit": 1000, "pixels_per_unit": 1},
    # The instant pipeline; only the workers started with --models echo hold it.
    {"pipeline": "echo", "model_id": "echo", "warm": False, "price_per_unit": 1,
     "pixels_per_unit": 1},
    # In the catalog, held by no worker: requests for it must get a 503.
    {"pipeline": "text-to-image", "model_id": "tiny/unserved", "warm": False,
     "price_per_unit": 1000, "pixels_per_unit": 1},
]


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = ""):
    """Waits for a condition (not for a time): returns its first truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")


class Stack:
    def __init__(self, base: Path):
        self.base = base
        self.logs = base / "logs"
        self.logs.mkdir()
        self.postgres = Postgres(base / "postgres", database="genai_test")
        self.redis_server = Redis(base / "redis")
        models_file = base / "models.json"
        models_file.write_text(json.dumps(TEST_MODELS))
        self.env = {
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis_server.url,
            "MODELS_FILE": str(models_file),
            "MODELS_DIR": str(MODELS_DIR),
            "MEDIA_DIR": str(base / "media"),
            "MEDIA_SECRET": "test-media-secret",
            "SYNC_TIMEOUT_SECONDS": "120",
        }
        self.procs: list[subprocess.Popen] = []
        self.redis = redis_lib.Redis.from_url(self.redis_server.url)

    def spawn(self, name: str, args: list[str], extra_env: dict | None = None):
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT,
                                env=python_env({**self.env, **(extra_env or {})}))
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.redis_server.stop()
        self.postgres.stop()


def heartbeat(stack: Stack, worker_id: str) -> dict | None:
    raw = stack.redis.get(f"worker:{worker_id}")
    return json.loads(raw) if raw else None


def start_worker(stack: Stack, worker_id: str, *extra: str, ready: bool = True):
    """A real worker slot process; waits until its heartbeat shows its models loaded."""
    proc = stack.spawn(worker_id, ["-m", "workers.slot", "--name", worker_id,
                                   "--heartbeat", "1", *extra])
    if ready:
        wait_for(lambda: proc.poll() is not None or heartbeat(stack, worker_id),
                 timeout=120, what=f"worker {worker_id} heartbeat")
        assert proc.poll() is None, stack.log(worker_id)
    return proc


def job(http, gateway, auth, job_id: str) -> dict:
    return http.get(f"{gateway}/jobs/{job_id}", headers=auth).json()


def wait_status(http, gateway, auth, job_id: str, statuses, timeout: float = 120) -> dict:
    """Waits until the job is in one of statuses; returns its view."""
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    return wait_for(lambda: (j := job(http, gateway, auth, job_id))["status"] in statuses and j,
                    timeout=timeout, what=f"job {job_id} to be {statuses}")


def submit_echo(http, gateway, auth, headers=None, **params) -> str:
    response = http.post(f"{gateway}/echo", json={"prompt": "hi", **params},
                         headers={**auth, "Prefer": "respond-async", **(headers or {})})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def make_key(sessions, name="test", role="user") -> str:
    from app.auth import create_key
    from app.db import transaction

    with transaction(sessions) as session:
        return create_key(session, name, role)
