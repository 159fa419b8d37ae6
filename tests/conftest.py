"""The test bootstrap: real PostgreSQL and Redis on loopback, real worker, recorder and
gateway processes, tiny models built from configs. Nothing reaches the internet."""

import os

import pytest
import requests

from devstack.servers import free_port, wait_for_port
from support import MODELS_DIR, Stack, make_key, start_worker


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from app.cli import upgrade_database
    from workers.tiny import build_missing

    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    build_missing(MODELS_DIR)
    os.environ["HF_HUB_OFFLINE"] = "1"
    s = Stack(tmp_path_factory.mktemp("stack"))
    upgrade_database(s.env["DATABASE_URL"])
    yield s
    s.close()


@pytest.fixture(scope="session")
def worker(stack):
    return start_worker(stack, "test-cpu-slot0")


@pytest.fixture(scope="session")
def recorder(stack):
    return stack.spawn("recorder", ["-m", "tasks.recorder"])


@pytest.fixture(scope="session")
def controller(stack):
    return stack.spawn("controller", ["-m", "tasks.controller"],
                       {"CONTROLLER_INTERVAL_SECONDS": "0.2"})


@pytest.fixture(scope="session")
def gateway(stack, worker, recorder, controller):
    """gunicorn serving create_app(), as the Procfile runs it; yields its base URL."""
    port = free_port()
    proc = stack.spawn("gateway", ["-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                                   "--worker-class", "gthread", "--workers", "2",
                                   "--threads", "16", "app:create_app()"])
    wait_for_port(port, timeout=60, proc=proc)
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def app(stack):
    """The gateway in-process, for tests of its answers that need no worker."""
    from app import create_app

    os.environ.update(stack.env)
    flask_app = create_app({"TESTING": True})
    return flask_app


@pytest.fixture(scope="session")
def sessions(app):
    return app.extensions["db"]


@pytest.fixture(scope="session")
def api_key(sessions):
    return make_key(sessions)


@pytest.fixture
def auth(api_key):
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(scope="session")
def http():
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="session")
def admin_key(sessions):
    return make_key(sessions, "admin", "admin")


@pytest.fixture
def admin_auth(admin_key):
    return {"Authorization": f"Bearer {admin_key}"}
