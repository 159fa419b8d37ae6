"""Helpers for tests that run the real stack (devstack.stack): models, jobs, keys."""

from devstack.stack import wait_for
from tasks import names

TEST_MODELS = [
    {"pipeline": "text-to-image", "model_id": "tiny/sd", "warm": True, "default": True,
     "price_per_unit": 1000, "pixels_per_unit": 1, "loras": {"style": "tiny/sd-style-lora"}},
    {"pipeline": "image-to-image", "model_id": "tiny/sd-img2img", "warm": True,
     "price_per_unit": 1000, "pixels_per_unit": 1},
    {"pipeline": "image-to-video", "model_id": "tiny/svd", "warm": True, "frames": 4,
     "price_per_unit": 10, "pixels_per_unit": 1},
    {"pipeline": "upscale", "model_id": "tiny/sd-x4-upscaler", "warm": True,
     "price_per_unit": 1000, "pixels_per_unit": 1},
    {"pipeline": "image-to-text", "model_id": "tiny/blip", "warm": True,
     "price_per_unit": 100, "pixels_per_unit": 1},
    {"pipeline": "audio-to-text", "model_id": "tiny/whisper", "warm": True,
     "price_per_unit": 1000, "pixels_per_unit": 1},
    {"pipeline": "text-to-speech", "model_id": "tiny/vits", "warm": True,
     "price_per_unit": 10000, "pixels_per_unit": 1},
    {"pipeline": "llm", "model_id": "tiny/llama", "warm": True,
     "price_per_unit": 100000, "pixels_per_unit": 1},
    {"pipeline": "segment-anything-2", "model_id": "tiny/sam2", "warm": True,
     "price_per_unit": 100, "pixels_per_unit": 1},
    # The instant pipeline; only the workers started with --models echo hold it. Priced at
    # 2.5 dev tickets (devstack.chain.DEV_TICKET_EV) so payment tests see several per job.
    {"pipeline": "echo", "model_id": "echo", "warm": False, "price_per_unit": 25 * 10**16,
     "pixels_per_unit": 1},
    # Loaded only on demand, by the dynamic workers of tests/test_dynamic_loading.py.
    {"pipeline": "text-to-image", "model_id": "tiny/cold-a", "warm": False,
     "price_per_unit": 1000, "pixels_per_unit": 1},
    {"pipeline": "text-to-image", "model_id": "tiny/cold-b", "warm": False,
     "price_per_unit": 1000, "pixels_per_unit": 1},
    # In the catalog, held by no worker: requests for it must get a 503.
    {"pipeline": "text-to-image", "model_id": "tiny/unserved", "warm": False,
     "price_per_unit": 1000, "pixels_per_unit": 1},
]


def missing_tool(why: str):
    """A tool a test needs is not here: a skip on a developer's machine, a failure in CI
    (CI=true), where `make deps` installs everything and a skip would hide a test."""
    import os

    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why} (CI=true: a missing tool fails the run)")
    pytest.skip(why)


SECRET_NAMES = ("SECRET", "TOKEN", "PASSWORD", "PRIVATE_KEY")


def secrets_of(env: dict) -> dict[str, str]:
    """The secrets an environment gives a process: by their names, and the passwords
    inside URLs (an operator's REDIS_URL carries its Redis user's)."""
    from urllib.parse import urlsplit

    found = {name: value for name, value in env.items()
             if value and any(part in name for part in SECRET_NAMES)}
    for name, value in env.items():
        if "://" in value and urlsplit(value).password:
            found[f"the password in {name}"] = urlsplit(value).password
    return found


def leaked_secrets(stack, env: dict) -> list[tuple[str, str]]:
    """(log, secret) for each secret of `env` written into the log of any process the
    stack ran."""
    secrets = secrets_of(env)
    return [(log.name, name) for log in sorted(stack.logs.glob("*.log"))
            for name, value in secrets.items() if value in log.read_text(errors="replace")]


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


def make_key(sessions, name="test", role="user", **limits) -> str:
    from app.api.auth import create_key
    from app.store.db import transaction

    with transaction(sessions) as session:
        return create_key(session, name, role, **limits)


def set_consuming(stack, worker_id: str, queue: str, consuming: bool,
                  operator_id: int | None = None) -> None:
    """Tells a worker of the stack's operator (or another), through its own queue, to
    start or stop taking jobs from queue, and waits until its heartbeat says it does. A
    fresh broker connection, not a pooled one: a fault test may have cut every pooled one."""
    from tasks.celery_app import make_celery

    operator_id = operator_id or stack.operator_id
    celery = make_celery(stack.env["REDIS_URL"])
    with celery.connection_for_write() as connection:
        celery.send_task(names.SET_CONSUMING, args=[queue, consuming], connection=connection,
                         queue=names.worker_queue(operator_id, worker_id))
    wait_for(lambda: (queue in active_queues(stack, worker_id, operator_id)) == consuming,
             timeout=60,
             what=f"{worker_id} to {'consume' if consuming else 'stop consuming'} {queue}")


def active_queues(stack, worker_id: str, operator_id: int | None = None) -> list[str]:
    """The queues a worker consumes, as its heartbeat says."""
    return (stack.heartbeat(worker_id, operator_id) or {}).get("queues", [])


def ticket_rows(sessions, job_ids) -> list:
    """The gateway's ledger rows of the tickets it issued for these jobs."""
    from sqlalchemy import select

    from app.store import ledger

    with sessions() as session:
        return list(session.scalars(select(ledger.TicketRecord)
                                    .where(ledger.TicketRecord.job_id.in_(job_ids))))


def mine_until_redeemed(rpc: str, sessions, job_ids, timeout: float = 90) -> None:
    """Blocks pass (anvil mines only on demand) until the redeemer finds the jobs' winners
    due and the watcher has seen them redeemed (all but those voided and re-issued)."""
    from app.store import ledger
    from devstack.devchain import mine

    def redeemed() -> bool:
        if all(t.status in (ledger.REDEEMED, ledger.VOID) for t in ticket_rows(sessions, job_ids)):
            return True
        mine(rpc, 1)
        return False

    wait_for(redeemed, timeout=timeout, interval=0.3, what="winners redeemed and reconciled")


def cli_operator(stack, name: str) -> dict:
    """An operator made by the CLI, as an admin would: its workers' environment."""
    import subprocess
    import sys

    from eth_account import Account

    from devstack.servers import python_env

    made = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "operators",
                           "create", "--name", name, "--address", Account.create().address],
                          env=python_env(stack.env), capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    return dict(line.split("=", 1) for line in made.stdout.split() if "=" in line)


class Operator:
    """An operator's view of the broker: its own user, its own key."""

    def __init__(self, env: dict):
        from tasks.connections import redis_client
        from workers.events import EventSender, OperatorIdentity

        self.env = env
        self.id = int(env["OPERATOR_ID"])
        self.redis = redis_client(env["REDIS_URL"])
        self.events = EventSender(self.redis, OperatorIdentity(
            self.id, bytes.fromhex(env["OPERATOR_TOKEN"])))
