"""A whole stack on loopback in one folder, for tests and benchmarks: PostgreSQL, Redis,
and our own processes (workers, recorder, controller, gunicorn gateway) with their logs."""

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path


from devstack.chain import STACK_OPERATOR_ADDRESS, restart_test_chain, start_test_chain
from devstack.servers import Postgres, Redis, free_port, python_env, wait_for_port
from tasks.connections import redis_client
from tasks.names import worker_key

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / ".run" / "models"  # tiny models, built once (they are deterministic)
TIME_SCALE = 0.2  # a heartbeat every second, a controller pass every 0.2 s


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
    def __init__(self, base: Path, models: list[dict], env: dict | None = None):
        from app.store.db import upgrade_database
        from devstack.tiny import build_missing

        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        build_missing(MODELS_DIR)
        self.base = base
        self.logs = base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        # What came up is stopped again when the rest cannot come up (anvil missing, a
        # migration failing): close() is for a stack that is whole.
        with contextlib.ExitStack() as started:
            self.postgres = Postgres(base / "postgres", database="genai_test")
            started.callback(self.postgres.stop)
            self.redis_server = Redis(base / "redis")
            started.callback(self.redis_server.stop)
            models_file = base / "models.json"
            models_file.write_text(json.dumps(models))
            # The chain is always on: anvil in memory, contracts deployed, the gateway funded.
            self.anvil, chain_env = start_test_chain(base)
            started.callback(self.anvil.stop)
            self.env = {
                **chain_env,
                "DATABASE_URL": self.postgres.url,
                "REDIS_URL": self.redis_server.url,
                "MODELS_FILE": str(models_file),
                "MODELS_DIR": str(MODELS_DIR),
                "MEDIA_DIR": str(base / "media"),
                "MEDIA_SECRET": "stack-media-secret",
                "WEBHOOK_SECRET": "stack-webhook-secret",
                "OPERATOR_KEYS_SECRET": "stack-operator-keys-secret",
                # The tests' webhook receivers listen on loopback.
                "WEBHOOK_ALLOW_PRIVATE": "127.0.0.0/8",
                "WEBHOOK_TIMEOUT_SECONDS": "3",
                "WEBHOOK_CONCURRENCY": "4",
                "WEBHOOK_PER_KEY_CONCURRENCY": "2",
                "METRICS_REFRESH_SECONDS": "0.5",
                # Every interval a process keeps time by (heartbeats, the controller's passes
                # and sweeps) is the production one times this one factor.
                "TIME_SCALE": str(TIME_SCALE),
                # Tests poll hard with one key; the limit itself is tested with keys of their own.
                "RATE_LIMIT_PER_MINUTE": "1000000",
                "SECRET_KEY": "stack-secret-key",
                "SYNC_TIMEOUT_SECONDS": "120",
                "HF_HUB_OFFLINE": "1",
                **(env or {}),
            }
            self.procs: list[subprocess.Popen] = []
            self.redis = redis_client(self.redis_server.url)
            upgrade_database(self.postgres.url)
            # The workers' operator: its own Redis user and key, as `operators create` makes.
            # Its workers are not paid (no OPERATOR_SECRET): tests/payments runs paid ones.
            self.operator_env = self.create_operator("stack", STACK_OPERATOR_ADDRESS)
            self.operator_id = int(self.operator_env["OPERATOR_ID"])
            started.pop_all()

    def create_operator(self, name: str, address: str) -> dict:
        """A registered operator: the environment of its workers and redeemer."""
        from app import operators
        from app.store.db import make_sessionmaker, transaction

        with transaction(make_sessionmaker(self.postgres.url)) as session:
            credentials = operators.create(session, self.redis,
                                           self.env["OPERATOR_KEYS_SECRET"].encode(),
                                           self.redis_server.url, name, address)
        return dict(line.split("=", 1) for line in credentials.env_lines())

    def spawn(self, name: str, args: list[str], extra_env: dict | None = None):
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT,
                                env=python_env({**self.env, **(extra_env or {})}))
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def heartbeat(self, worker_id: str, operator_id: int | None = None) -> dict | None:
        raw = self.redis.get(worker_key(operator_id or self.operator_id, worker_id))
        return json.loads(raw) if raw else None

    def start_worker(self, worker_id: str, *args: str, ready: bool = True,
                     env: dict | None = None):
        """A real worker slot process, as the stack's operator unless `env` names
        another; waits until its heartbeat says it consumes."""
        env = {**self.operator_env, **(env or {})}
        proc = self.spawn(worker_id, ["-m", "workers.slot", "--name", worker_id, *args], env)
        if ready:
            operator_id = int(env["OPERATOR_ID"])
            wait_for(lambda: proc.poll() is not None or self.heartbeat(worker_id, operator_id),
                     timeout=120, what=f"worker {worker_id} heartbeat")
            if proc.poll() is not None:
                raise RuntimeError(self.log(worker_id))
        return proc

    def start_recorder(self):
        """The recorder, serving its metrics at self.recorder_metrics_url."""
        port = free_port()
        self.recorder_metrics_url = f"http://127.0.0.1:{port}/metrics"
        return self.spawn("recorder", ["-m", "app.recorder"],
                          {"RECORDER_METRICS_PORT": str(port)})

    def start_webhooks(self):
        return self.spawn("webhooks", ["-m", "app.webhooks"])

    def start_settler(self, name: str = "settler", env: dict | None = None):
        """The settler, looking for debts often and retrying soon (tests wait on it)."""
        return self.spawn(name, ["-m", "app.settler"],
                          {"SETTLE_INTERVAL_SECONDS": "0.2", "SETTLE_RETRY_MAX_SECONDS": "2",
                           **(env or {})})

    def start_controller(self):
        return self.spawn("controller", ["-m", "app.controller"])

    def start_gateway(self, name: str = "gateway", workers: int = 2,
                      env: dict | None = None) -> str:
        """gunicorn serving create_app(), as the Procfile runs it; returns its base URL.
        Its public address is its own (the links to uploads it gives workers)."""
        port = free_port()
        own = {"PROMETHEUS_MULTIPROC_DIR": str(self.base / f"prometheus-{name}"),
               "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}/"}
        proc = self.spawn(name, ["-m", "gunicorn", "-c", "gunicorn.conf.py",
                                 "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
                          {**own, **(env or {})})
        wait_for_port(port, timeout=60, proc=proc)
        return f"http://127.0.0.1:{port}"

    def stop_chain(self) -> None:
        """The chain node goes away (its state is written first), as in an outage."""
        self.anvil.stop()

    def start_chain(self) -> None:
        """The node is back, on the same address, with the chain as it was."""
        self.anvil = restart_test_chain(self.base, self.anvil)

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
        self.anvil.stop()
