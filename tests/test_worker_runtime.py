"""The worker runtime with real worker processes: crashes lose nothing, cancel and
deadlines stop jobs, memory errors retry once, failures are reported, shutdown is clean."""

import json
import os
import signal
import time

import pytest

from support import active_queues, job, set_consuming, submit_echo, wait_for, wait_status
from tasks import control

SLOW = {"steps": 400, "step_seconds": 0.05}  # 20 s unless stopped


def statuses(view: dict) -> list[str]:
    return [h["status"] for h in view["history"]]


@pytest.mark.fault
def test_sigkill_mid_job_is_finished_once_by_another_worker(http, gateway, auth, stack,
                                                            echo_worker):
    first = echo_worker("echo-kill-a")
    job_id = submit_echo(http, gateway, auth, steps=60, step_seconds=0.05)
    started = wait_status(http, gateway, auth, job_id, "started")
    assert started["worker"] == "echo-kill-a"
    wait_for(lambda: job(http, gateway, auth, job_id)["progress"] > 0, what="progress")
    first.send_signal(signal.SIGKILL)
    first.wait()
    echo_worker("echo-kill-b")
    done = wait_status(http, gateway, auth, job_id, ("succeeded", "failed"))
    assert done["status"] == "succeeded" and done["worker"] == "echo-kill-b"
    assert done["attempts"] == 2
    assert statuses(done) == ["queued", "started", "requeued", "started", "succeeded"]
    assert control.state(stack.redis, job_id) == "succeeded"
    assert job_id not in control.running(stack.redis)


@pytest.mark.fault
def test_a_job_that_keeps_losing_its_worker_fails_after_max_attempts(http, gateway, auth,
                                                                      stack, echo_worker):
    proc = echo_worker("echo-poison-1")
    job_id = submit_echo(http, gateway, auth, **SLOW)
    for attempt in (1, 2, 3):
        if attempt > 1:
            proc = echo_worker(f"echo-poison-{attempt}")
        wait_for(lambda: (j := job(http, gateway, auth, job_id))["status"] == "started"
                 and j["attempts"] == attempt, what=f"attempt {attempt}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    failed = wait_status(http, gateway, auth, job_id, "failed")
    assert "lost 3 times" in failed["error"]


def test_cancel_running_job_stops_it_and_frees_the_slot(http, gateway, auth, echo_worker):
    echo_worker("echo-cancel")
    job_id = submit_echo(http, gateway, auth, **SLOW)
    wait_for(lambda: job(http, gateway, auth, job_id)["progress"] > 0, what="progress")
    response = http.post(f"{gateway}/jobs/{job_id}/cancel", headers=auth)
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    # The slot is free at once: the next job runs on the same (only) echo worker.
    after = http.post(f"{gateway}/echo", json={"prompt": "next"}, headers=auth)
    assert after.status_code == 200, after.text
    view = job(http, gateway, auth, job_id)
    assert view["status"] == "canceled" and view["progress"] < 1.0 and view["result"] is None
    again = http.post(f"{gateway}/jobs/{job_id}/cancel", headers=auth)
    assert again.status_code == 409


def test_canceled_queued_job_never_runs(http, gateway, auth, stack, echo_worker):
    echo_worker("echo-queue")
    busy = submit_echo(http, gateway, auth, **SLOW)
    wait_status(http, gateway, auth, busy, "started")
    waiting = submit_echo(http, gateway, auth)
    assert http.post(f"{gateway}/jobs/{waiting}/cancel", headers=auth).status_code == 200
    http.post(f"{gateway}/jobs/{busy}/cancel", headers=auth)
    # The worker takes the canceled message, and drops it: a later job proves it got past.
    assert http.post(f"{gateway}/echo", json={"prompt": "x"}, headers=auth).status_code == 200
    assert statuses(job(http, gateway, auth, waiting)) == ["queued", "canceled"]
    assert "not run: canceled" in stack.log("echo-queue")


def test_deadline_passed_before_start_aborts(http, gateway, auth, stack, echo_worker):
    echo_worker("echo-deadline")
    # The worker stops taking echo jobs for a moment: the job is admitted (the worker is
    # idle) and then waits in the queue past its deadline.
    set_consuming(stack, "echo-deadline", "echo:echo", False)
    late = submit_echo(http, gateway, auth, headers={"X-Deadline-Seconds": "0.5"})
    submitted = time.time()
    wait_for(lambda: time.time() > submitted + 0.6, what="the deadline to pass")
    set_consuming(stack, "echo-deadline", "echo:echo", True)
    aborted = wait_status(http, gateway, auth, late, ("aborted", "succeeded"))
    assert aborted["status"] == "aborted" and "deadline" in aborted["error"]
    assert statuses(aborted) == ["queued", "aborted"]


def test_time_limit_stops_a_running_job(http, gateway, auth, echo_worker):
    echo_worker("echo-limit")
    job_id = submit_echo(http, gateway, auth, headers={"X-Time-Limit-Seconds": "0.5"}, **SLOW)
    failed = wait_status(http, gateway, auth, job_id, ("failed", "succeeded"))
    assert failed["status"] == "failed" and "time limit" in failed["error"]


@pytest.mark.fault
def test_out_of_memory_retries_once_then_fails_and_worker_stays_healthy(
        http, gateway, auth, echo_worker):
    echo_worker("echo-oom")
    job_id = submit_echo(http, gateway, auth, fail="oom")
    failed = wait_status(http, gateway, auth, job_id, ("failed", "succeeded"))
    assert failed["error"] == "GPU out of memory." and failed["attempts"] == 2
    assert "requeued" in statuses(failed)
    assert http.post(f"{gateway}/echo", json={"prompt": "x"}, headers=auth).status_code == 200


def test_pipeline_error_is_500_with_livepeer_message(http, gateway, auth, echo_worker):
    echo_worker("echo-error")
    response = http.post(f"{gateway}/echo", json={"prompt": "x", "fail": "error"},
                         headers=auth)
    assert response.status_code == 500
    assert response.json() == {"detail": {"msg": "Echo pipeline error."}}


def test_two_workers_share_a_queue(http, gateway, auth, echo_worker):
    echo_worker("echo-share-a")
    echo_worker("echo-share-b")
    ids = [submit_echo(http, gateway, auth, steps=10, step_seconds=0.05) for _ in range(6)]
    done = [wait_status(http, gateway, auth, i, "succeeded") for i in ids]
    assert {d["worker"] for d in done} == {"echo-share-a", "echo-share-b"}


@pytest.mark.fault
def test_sigterm_finishes_the_job_and_removes_the_heartbeat(http, gateway, auth, stack,
                                                            echo_worker):
    proc = echo_worker("echo-term")
    job_id = submit_echo(http, gateway, auth, steps=20, step_seconds=0.05)
    wait_status(http, gateway, auth, job_id, "started")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert job(http, gateway, auth, job_id)["status"] == "succeeded"
    assert stack.heartbeat("echo-term") is None


def test_failing_model_is_reported_and_the_worker_serves_the_others(
        http, gateway, auth, stack, admin_auth, tmp_path, app):
    models = json.loads(open(stack.env["MODELS_FILE"]).read()) + [
        {"pipeline": "text-to-image", "model_id": "tiny/broken", "warm": True}]
    models_file = tmp_path / "models.json"
    models_file.write_text(json.dumps(models))
    (tmp_path / "models" / "tiny" / "broken").mkdir(parents=True)
    (tmp_path / "models" / "tiny" / "broken" / "model_index.json").write_text("{not json")
    os.symlink(os.path.join(stack.env["MODELS_DIR"], "tiny", "sd"),
               tmp_path / "models" / "tiny" / "sd")
    proc = stack.start_worker("broken-host", "--models", "tiny/broken,echo",
                        "--models-file", str(models_file),
                        "--models-dir", str(tmp_path / "models"))
    try:
        workers = http.get(f"{gateway}/admin/workers", headers=admin_auth).json()["workers"]
        mine = next(w for w in workers if w["id"] == "broken-host")
        broken = next(m for m in mine["models"] if m["model_id"] == "tiny/broken")
        assert broken["ready"] is False and broken["error"]
        assert next(m for m in mine["models"] if m["model_id"] == "echo")["ready"] is True
        queues = active_queues(stack, "broken-host")
        assert "echo:echo" in queues and "text-to-image:tiny/broken" not in queues
    finally:
        proc.terminate()
        proc.wait()


def test_admin_api_needs_an_admin_key(http, gateway, auth):
    assert http.get(f"{gateway}/admin/workers").status_code == 401
    assert http.get(f"{gateway}/admin/workers", headers=auth).status_code == 403


def test_every_process_keeps_the_production_intervals_times_one_factor(stack, gateway):
    """The stack runs the production intervals scaled by TIME_SCALE, not intervals of its
    own: the worker beats every 5 s x the factor, the controller passes every 1 s x the
    factor and sweeps every 5 s x it, jobs older than 30 s x it."""
    from devstack.stack import TIME_SCALE

    assert stack.heartbeat("test-cpu-slot0")["interval"] == 5 * TIME_SCALE
    expected = (f"a pass every {1 * TIME_SCALE:g}s, a sweep every {5 * TIME_SCALE:g}s of "
                f"jobs older than {30 * TIME_SCALE:g}s")
    wait_for(lambda: expected in stack.log("controller"), timeout=30, what=expected)
