"""The test bootstrap: real PostgreSQL and Redis on loopback, real worker, recorder,
controller and gateway processes, tiny models built from configs. Nothing reaches the
internet."""

import os

import pytest
import requests

from devstack.stack import Stack
from support import TEST_MODELS, make_key


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    s = Stack(tmp_path_factory.mktemp("stack"), TEST_MODELS)
    yield s
    s.close()


@pytest.fixture(scope="session")
def worker(stack):
    return stack.start_worker("test-cpu-slot0")


@pytest.fixture(scope="session")
def recorder(stack):
    return stack.start_recorder()


@pytest.fixture(scope="session")
def controller(stack):
    return stack.start_controller()


@pytest.fixture(scope="session")
def gateway(stack, worker, recorder, controller):
    return stack.start_gateway()


@pytest.fixture(scope="session")
def app(stack):
    """The gateway in-process, for tests of its answers that need no worker."""
    from app import create_app

    os.environ.update(stack.env)
    return create_app({"TESTING": True})


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
def admin_key(sessions):
    return make_key(sessions, "admin", "admin")


@pytest.fixture
def admin_auth(admin_key):
    return {"Authorization": f"Bearer {admin_key}"}


@pytest.fixture(scope="session")
def http():
    with requests.Session() as s:
        yield s
