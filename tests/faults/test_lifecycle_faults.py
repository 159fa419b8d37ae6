"""No job left behind: each single fault of a job's life, on real processes, and the job
still reaches one final state (the invariants are checked after each: tests/conftest.py).
Each fault lands while the job runs: the worker's heartbeat names the job and its
progress is above zero before the fault."""

import os
import signal
import time

import pytest

from support import job, set_consuming, submit_echo, wait_for, wait_status
from tasks import control, names
from tasks.queues import priority_keys

pytestmark = pytest.mark.fault
LONG = {"steps": 60, "step_seconds": 0.1}  # 6 s: long enough for a fault to land mid-run


def statuses(view) -> list[str]:
    return [h["status"] for h in view["history"]]


def running(http, gateway, auth, stack, worker: str, job_id: str, operator_id=None) -> None:
    """Waits until `worker` runs the job: its heartbeat names it, and it progressed."""
    wait_for(lambda: (stack.heartbeat(worker, operator_id) or {}).get("busy") == job_id
             and job(http, gateway, auth, job_id)["progress"] > 0,
             timeout=60, what=f"{worker} to run {job_id}")


@pytest.fixture
def launcher(stack):
    """The launcher (python -m workers) as a process, one echo slot named fault-cpu-slot0."""
    proc = stack.spawn("launcher", ["-m", "workers", "--gpus", "none", "--host", "fault",
                                    "--models", "echo"], stack.operator_env)
    wait_for(lambda: stack.heartbeat("fault-cpu-slot0"), timeout=120, what="the slot")
    yield proc
    proc.terminate()
    proc.wait(30)
    stack.redis.delete(names.worker_key(stack.operator_id, "fault-cpu-slot0"))


def test_a_slot_killed_mid_job_and_restarted_under_its_name_finishes_the_job(
        http, gateway, auth, stack, launcher):
    """The most common crash: an OOM kill, then the launcher restarts the slot under the
    same name. The dead process's claim is lost at once; the new one runs the job."""
    job_id = submit_echo(http, gateway, auth, **LONG)
    running(http, gateway, auth, stack, "fault-cpu-slot0", job_id)
    first = stack.heartbeat("fault-cpu-slot0")
    os.kill(first["pid"], signal.SIGKILL)
    done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=120)
    assert done["status"] == "succeeded" and done["worker"] == "fault-cpu-slot0"
    assert done["attempts"] == 2
    assert statuses(done) == ["queued", "started", "requeued", "started", "succeeded"]
    assert stack.heartbeat("fault-cpu-slot0")["boot"] != first["boot"]
    assert "restarting" in stack.log("launcher")


def test_a_slot_killed_mid_job_and_not_restarted_loses_nothing(http, gateway, auth, stack,
                                                               echo_worker):
    first = echo_worker("fault-gone")
    job_id = submit_echo(http, gateway, auth, **LONG)
    running(http, gateway, auth, stack, "fault-gone", job_id)
    first.send_signal(signal.SIGKILL)
    first.wait()
    echo_worker("fault-heir")
    done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=120)
    assert done["status"] == "succeeded" and done["worker"] == "fault-heir"
    assert done["attempts"] == 2


def test_a_job_committed_but_never_published_is_published_by_the_sweep(
        app, api_key, stack, gateway, http, auth, echo_worker, monkeypatch):
    """The gateway dies between the job's commit and its publish (here: the publish
    never happens): the controller's sweep publishes it from its outbox row, and a
    retry with the same Idempotency-Key finds the same job, which ends."""
    from app.api import pipelines

    echo_worker("fault-outbox")
    monkeypatch.setattr(pipelines, "enqueue_or_withdraw", lambda key, job, message: None)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_key}", "Prefer": "respond-async",
               "Idempotency-Key": f"outbox-{time.time()}"}
    accepted = client.post("/echo", json={"prompt": "lost"}, headers=headers)
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    job_id = accepted.get_json()["id"]
    assert control.read(stack.redis, job_id) is None  # never published
    monkeypatch.undo()
    done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=120)
    assert done["status"] == "succeeded"
    again = client.post("/echo", json={"prompt": "lost"}, headers=headers)
    assert again.get_json()["id"] == job_id


def test_a_job_whose_message_cannot_be_queued_is_taken_back(app, stack, sessions,
                                                            echo_worker, monkeypatch):
    """The broker refuses the publish after the job's commit: the client gets a 503 it
    can retry, and nothing of the job is left (its rows, its place in the key's share)."""
    from redis.exceptions import ConnectionError as BrokerDown
    from sqlalchemy import func, select

    from app.api.auth import hash_key
    from app.store.tables import ApiKey, Job, JobHistory, JobOutbox
    from support import make_key

    def refused(pipe, job_id, *args):
        raise BrokerDown("the broker refused the message")

    echo_worker("fault-unqueued")  # admission needs a worker for the model
    key = make_key(sessions, "unqueued")
    monkeypatch.setattr(control, "ask_init", refused)
    answer = app.test_client().post("/echo", json={"prompt": "never queued"}, headers={
        "Authorization": f"Bearer {key}", "Prefer": "respond-async"})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert answer.get_json()["detail"]["msg"] == "The job queue is unavailable; try again."
    with sessions() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key)))
        left = [session.scalar(select(func.count()).select_from(table).join(Job).where(
            Job.api_key_id == key_id)) for table in (JobHistory, JobOutbox)]
        made = session.scalar(select(func.count()).select_from(Job).where(
            Job.api_key_id == key_id))
    assert made == 0 and left == [0, 0]
    assert stack.redis.zcard(names.in_flight_key(key_id)) == 0


def test_a_message_lost_while_queued_is_published_again(http, gateway, auth, stack,
                                                        echo_worker):
    """A consumer took the job's message and dropped it (a worker killed between taking
    it and recording it, or an operator that threw it away): the sweep sends it again
    once its queue is empty."""
    echo_worker("fault-requeue")
    set_consuming(stack, "fault-requeue", "echo:echo", False)
    job_id = submit_echo(http, gateway, auth)
    wait_for(lambda: any(stack.redis.rpop(key) for key in priority_keys("echo:echo")),
             timeout=30, what="the message, to drop it")
    set_consuming(stack, "fault-requeue", "echo:echo", True)
    done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=120)
    assert done["status"] == "succeeded" and done["attempts"] == 1


def test_results_that_cannot_be_stored_are_retried_then_recorded(
        http, gateway, auth, stack, echo_worker):
    """The media store refuses writes for a while (a full disk, a read-only mount):
    the recorder keeps the event and records it once the store is back."""
    echo_worker("fault-media")
    media = stack.env["MEDIA_DIR"]
    aside = f"{media}.aside"
    os.rename(media, aside)
    open(media, "w").close()  # a file where the folder was: every write fails, even root's
    try:
        job_id = submit_echo(http, gateway, auth, steps=2, step_seconds=0.05)
        wait_for(lambda: f"of {names.operator_events(stack.operator_id)} failed (try 2)"
                 in stack.log("recorder"), timeout=60, what="the recorder to retry")
        assert job(http, gateway, auth, job_id)["status"] in ("queued", "started")
    finally:
        os.remove(media)
        os.rename(aside, media)
    done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=120)
    assert done["status"] == "succeeded"
    assert http.get(done["result"]["images"][0]["url"]).status_code == 200


def test_a_cancel_that_comes_after_the_end_answers_409_with_what_the_job_became(
        http, gateway, auth, echo_worker):
    echo_worker("fault-late-cancel")
    job_id = submit_echo(http, gateway, auth)
    wait_status(http, gateway, auth, job_id, "succeeded")
    late = http.post(f"{gateway}/jobs/{job_id}/cancel", headers=auth)
    assert late.status_code == 409 and "succeeded" in late.json()["detail"]["msg"]
    assert job(http, gateway, auth, job_id)["status"] == "succeeded"


def test_a_superseded_attempt_stops_and_only_one_finishes(http, gateway, auth, stack,
                                                          echo_worker):
    """The gateway gives the attempt to someone else while its worker still runs it
    (here: the controller's view of the worker is lost, as after a Redis restart longer
    than the heartbeat's life): the first run stops at its next step, its outcome is
    dropped, and the job ends once."""
    from app.controller import make_controller
    from app.settings import Settings
    from tasks.settings import Env

    echo_worker("fault-first")
    job_id = submit_echo(http, gateway, auth, **LONG)
    running(http, gateway, auth, stack, "fault-first", job_id)
    claimant, attempt = control.running(stack.redis)[job_id]
    controller = make_controller(Settings.from_env(Env(stack.env)))
    controller.dispatcher.lost(job_id, claimant, attempt, "its heartbeat expired")
    wait_for(lambda: "stopped: superseded" in stack.log("fault-first"), timeout=30,
             what="the first run to stop")
    done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=120)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert statuses(done) == ["queued", "started", "requeued", "started", "succeeded"]
