"""Flower, as `make run` starts it (python -m app.flower): behind basic auth, its HTTP
API shows every declared queue with its length, workers by name, and tasks from sent on."""

import subprocess
import sys
import uuid

import pytest

from devstack.servers import free_port, python_env, wait_for_port
from support import submit_echo, wait_for, wait_status
from tasks import names, queues
from tasks.celery_app import queues_for

AUTH = ("ops", "flower-test-password")
UNSERVED = names.model_queue("text-to-image", "tiny/unserved")  # declared, no consumer


@pytest.fixture(scope="module")
def flower(stack, ops_worker, app, http):
    port = free_port()
    proc = stack.spawn("flower", ["-m", "app.flower", "--address=127.0.0.1",
                                  f"--port={port}"],
                       {"FLOWER_BASIC_AUTH": ":".join(AUTH)})
    wait_for_port(port, timeout=60, proc=proc)
    url = f"http://127.0.0.1:{port}"
    wait_until_it_hears_events(url, app.extensions["celery"], http, stack.redis)
    yield url
    proc.terminate()
    proc.wait(30)


def wait_until_it_hears_events(url: str, celery, http, redis) -> None:
    """Flower learns of tasks from events broadcast with pub/sub, which keeps nothing:
    a task sent before its receiver subscribes is never seen, and its HTTP port opens
    first. Probe tasks go out until Flower shows one; then they are taken away."""
    probes = []

    def heard() -> bool:
        probes.append(f"ops-flower-probe-{uuid.uuid4()}")
        celery.send_task(names.RUN_JOB, args=[{}], queue=UNSERVED, task_id=probes[-1])
        return any(http.get(f"{url}/api/task/info/{probe}", auth=AUTH).status_code == 200
                   for probe in probes)

    try:
        wait_for(heard, timeout=60, interval=0.2, what="Flower to hear task events")
    finally:
        redis.delete(*queues.priority_keys(UNSERVED))


def test_flower_wants_its_login(http, flower):
    assert http.get(f"{flower}/api/queues/length").status_code == 401
    assert http.get(f"{flower}/api/queues/length", auth=("ops", "wrong")).status_code == 401
    assert http.get(f"{flower}/api/queues/length", auth=AUTH).status_code == 200


def test_flower_will_not_start_without_auth_configured(stack):
    env = python_env({k: v for k, v in stack.env.items()})
    env.pop("FLOWER_BASIC_AUTH", None)
    done = subprocess.run([sys.executable, "-m", "app.flower"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "FLOWER_BASIC_AUTH" in done.stderr


def test_flower_shows_every_declared_queue_and_its_length(http, flower, app, stack):
    celery = app.extensions["celery"]
    sent = [f"ops-flower-{uuid.uuid4()}" for _ in range(3)]
    try:
        for task_id in sent:  # jobs for a model no worker holds: they wait
            celery.send_task(names.RUN_JOB, args=[{}], queue=UNSERVED, task_id=task_id)

        def lengths() -> dict[str, int]:
            reply = http.get(f"{flower}/api/queues/length", auth=AUTH).json()
            return {q["name"]: q["messages"] for q in reply["active_queues"]}

        found = wait_for(lambda: (ls := lengths()).get(UNSERVED) == 3 and ls,
                         timeout=30, what="Flower to count the queue")
        declared = {q.name for q in queues_for(app.extensions["catalog"])}
        assert declared <= set(found)  # consumed or not, with a worker online
        # A task is visible from the moment it is sent.
        info = wait_for(lambda: (r := http.get(f"{flower}/api/task/info/{sent[0]}",
                                               auth=AUTH)).status_code == 200 and r.json(),
                        timeout=30, what="Flower to see the sent task")
        assert info["state"] == "PENDING" and info["name"] == names.RUN_JOB
    finally:
        stack.redis.delete(*queues.priority_keys(UNSERVED))


def test_flower_follows_a_job_to_success_on_a_named_worker(http, gateway, auth, flower,
                                                           ops_worker):
    job_id = submit_echo(http, gateway, auth)
    wait_status(http, gateway, auth, job_id, "succeeded")
    task_id = f"{job_id}.1"  # a job's task id is its id and attempt
    info = wait_for(lambda: (r := http.get(f"{flower}/api/task/info/{task_id}",
                                           auth=AUTH)).status_code == 200
                    and r.json()["state"] == "SUCCESS" and r.json(),
                    timeout=30, what="Flower to see the job succeed")
    assert info["worker"].startswith(f"{ops_worker.name}@")
    # The workers page knows it from its events (an operator's worker takes no remote
    # control command, so Flower's inspect cannot reach it).
    workers = http.get(f"{flower}/workers", params={"json": 1}, auth=AUTH).json()["data"]
    assert any(w["hostname"].startswith(f"{ops_worker.name}@") and w["status"]
               for w in workers)
