"""The README's promises that had no test of their own, each against the real stack."""

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from support import job, make_key, set_consuming, submit_echo, wait_for, wait_status
from tasks import names, queues


def test_two_simultaneous_requests_with_one_idempotency_key_make_one_job(
        http, gateway, auth, echo_worker):
    echo_worker("promise-twins")
    headers = {**auth, "Idempotency-Key": f"twins-{time.time()}", "Prefer": "respond-async"}

    def post(_):
        return requests.post(f"{gateway}/echo", json={"prompt": "twin"}, headers=headers,
                             timeout=60)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(post, range(2)))
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["id"] == answers[1].json()["id"]


def test_idempotency_keys_belong_to_one_api_key(http, gateway, sessions, echo_worker):
    echo_worker("promise-scoped")
    same = {"Idempotency-Key": f"scoped-{time.time()}", "Prefer": "respond-async"}
    ids = []
    for name in ("scoped-a", "scoped-b"):
        key = {"Authorization": f"Bearer {make_key(sessions, name)}"}
        answer = http.post(f"{gateway}/echo", json={"prompt": "x"}, headers={**key, **same})
        assert answer.status_code == 202
        ids.append(answer.json()["id"])
    assert ids[0] != ids[1]


def test_a_key_cannot_see_cancel_or_follow_another_keys_job(http, gateway, auth, sessions,
                                                             echo_worker):
    echo_worker("promise-owner")
    job_id = submit_echo(http, gateway, auth, steps=20, step_seconds=0.1)
    other = {"Authorization": f"Bearer {make_key(sessions, 'nosy')}"}
    assert http.get(f"{gateway}/jobs/{job_id}", headers=other).status_code == 404
    assert http.post(f"{gateway}/jobs/{job_id}/cancel", headers=other).status_code == 404
    assert http.get(f"{gateway}/jobs/{job_id}/events", headers=other).status_code == 404
    assert wait_status(http, gateway, auth, job_id, "succeeded")


def test_a_result_link_expires_after_its_ttl_and_the_job_hands_out_a_fresh_one(
        stack, http, auth, echo_worker):
    gateway = stack.start_gateway("gateway-ttl", workers=1,
                                  env={"MEDIA_URL_TTL_SECONDS": "2"})
    echo_worker("promise-ttl")
    job_id = submit_echo(http, gateway, auth)
    url = wait_status(http, gateway, auth, job_id, "succeeded")["result"]["images"][0]["url"]
    assert http.get(url).status_code == 200
    wait_for(lambda: http.get(url).status_code == 403, timeout=30, what="the link to expire")
    fresh = job(http, gateway, auth, job_id)["result"]["images"][0]["url"]
    assert fresh != url and http.get(fresh).status_code == 200


def test_a_stale_delivery_of_an_old_attempt_is_dropped_unread(stack, http, gateway, auth,
                                                              echo_worker):
    """A late redelivery of an attempt that was superseded (its message came back after
    the job was requeued) is dropped by the worker's check, never run."""
    from tasks.celery_app import make_celery
    from tasks.messages import JobMessage

    echo_worker("promise-stale")
    job_id = submit_echo(http, gateway, auth)
    wait_status(http, gateway, auth, job_id, "succeeded")
    old = JobMessage(job_id=job_id, pipeline="echo", model_id="echo", queue="echo:echo",
                     params={"prompt": "old", "seed": 1}, attempt=7)
    make_celery(stack.env["REDIS_URL"]).send_task(names.RUN_JOB, args=[old.model_dump()],
                                                  queue="echo:echo")
    wait_for(lambda: f"job {job_id} attempt 7 not run: stale" in stack.log("promise-stale"),
             timeout=30, what="the stale delivery dropped")
    assert job(http, gateway, auth, job_id)["attempts"] == 1


def test_jobs_stranded_in_an_evicted_models_queue_move_to_the_cold_queue(
        stack, http, gateway, auth, app, echo_worker):
    """rehome: a model's queue with jobs and no worker that holds the model any more,
    while a worker loads models on demand: its jobs go to the pipeline's cold queue."""
    holder = echo_worker("promise-holder")  # holds echo warm: jobs go to echo:echo
    set_consuming(stack, "promise-holder", "echo:echo", False)
    ids = [submit_echo(http, gateway, auth) for _ in range(2)]
    assert queues.depth(stack.redis, "echo:echo") == 2
    holder.kill()
    holder.wait()
    stack.redis.delete(names.worker_key(stack.operator_id, "promise-holder"))
    # A loader consumes only the cold queue (until it holds echo): it gets the jobs only
    # if the controller moves them there.
    echo_worker("promise-loader", "--models", "", "--dynamic", "echo")
    for job_id in ids:
        assert wait_status(http, gateway, auth, job_id, "succeeded")["worker"] == "promise-loader"
    assert "moved 2 job(s) from echo:echo to its cold queue" in stack.log("controller")


def test_rate_limits_hold_across_two_gateway_processes(stack, http, sessions, gateway):
    other = stack.start_gateway("gateway-rate", workers=1)

    def ten_requests() -> list[int] | None:
        """Ten requests, five to each gateway, within one minute's window (None when
        the window turned over mid-way)."""
        key = {"Authorization": f"Bearer {make_key(sessions, 'rated', rate_limit_per_minute=5)}"}
        minute = int(time.time() // 60)
        codes = [http.get(f"{url}/jobs/none", headers=key).status_code
                 for url in (gateway, other) * 5]
        return codes if int(time.time() // 60) == minute else None

    codes = ten_requests() or ten_requests()
    assert codes.count(404) == 5 and codes.count(429) == 5
