"""The test bootstrap: real PostgreSQL and Redis on loopback, real worker, recorder,
controller and gateway processes, tiny models built from configs. Nothing reaches the
internet."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from devstack.stack import Stack
from support import TEST_MODELS, make_key
from tasks.names import worker_key


@pytest.fixture(scope="session")
def stack():
    # Not under pytest's tmp_path: pytest prunes old runs' folders, and PostgreSQL runs
    # as its own user, which needs to reach its data folder.
    os.environ["HF_HUB_OFFLINE"] = "1"
    base = Path(tempfile.mkdtemp(prefix="genai-stack-"))
    # A job's start waits long enough for its end that a test can send the end after
    # seeing the start read (tests/test_recorder_batch.py).
    s = Stack(base, TEST_MODELS, {"RECORDER_LINGER_MS": "200"})
    yield s
    s.close()
    if os.environ.get("KEEP_STACK"):  # to read the processes' logs after a failure
        print(f"\nthe stack's folder, kept: {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)


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
def webhooks(stack):
    return stack.start_webhooks()


@pytest.fixture(scope="session")
def gateway(stack, worker, recorder, controller, webhooks):
    return stack.start_gateway()


@pytest.fixture(scope="session")
def app(stack):
    """The gateway in-process, for tests of its answers that need no worker."""
    from app import create_app

    os.environ.update(stack.env)
    return create_app(testing=True)


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


@pytest.fixture
def echo_worker(stack, gateway):
    """Starts fresh workers (echo only, unless told otherwise), killed after the test."""
    workers, names = [], []

    def start(name: str, *args: str):
        proc = stack.start_worker(name, *(args or ("--models", "echo")))
        workers.append(proc)
        names.append(name)
        return proc

    yield start
    for proc in workers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A killed worker leaves its heartbeat until it expires: drop it, so that no later
    # test routes to a worker that is gone.
    for name in names:
        stack.redis.delete(worker_key(stack.operator_id, name))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After every test marked `fault`, before its fixtures (its workers) go: each job
    it made reached one final state, once, no result file it wrote is orphaned (a
    temporary one included), and nothing is owed or paid but successes. A failure here
    fails the test."""
    if item.get_closest_marker("fault") is None:
        return (yield)
    from devstack import invariants

    stack = item._request.getfixturevalue("stack")
    sessions = item._request.getfixturevalue("sessions")
    with sessions() as session:
        since = session.scalar(text("SELECT now()"))
    started = invariants.now()
    result = yield
    made = invariants.jobs_since(sessions, since)
    invariants.assert_jobs_final_exactly_once(sessions, stack.redis, made, timeout=120)
    invariants.assert_no_orphan_media(sessions, invariants.media_of(stack), since=started)
    invariants.assert_nothing_owed_but_successes(sessions, made)
    return result
