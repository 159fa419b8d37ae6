"""Faults with real processes: PostgreSQL and Redis going away under load. Afterwards
every accepted job is final exactly once and no result file is orphaned."""

import time

from devstack.stack import wait_for
from invariants import assert_jobs_final_exactly_once, assert_no_orphan_media
from support import submit_echo, wait_status

WORK = {"steps": 10, "step_seconds": 0.1}  # 1 s each


def test_postgres_down_for_10s_answers_503_and_recovers(http, gateway, auth, stack,
                                                        sessions, echo_worker):
    echo_worker("fault-pg")
    accepted = [submit_echo(http, gateway, auth, **WORK) for _ in range(4)]
    stack.postgres.stop()
    down_since = time.monotonic()
    try:
        started = time.monotonic()
        refused = http.post(f"{gateway}/echo", json={"prompt": "x"}, headers=auth)
        assert time.monotonic() - started < 10  # answered, not hung
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert refused.json()["detail"]["msg"].startswith("The database is unavailable")
        health = http.get(f"{gateway}/health")
        assert health.status_code == 503 and health.json()["database"].startswith("error")
        # The worker goes on without the database: it needs only Redis.
        wait_for(lambda: not stack.heartbeat("fault-pg")["busy"] and
                 not stack.redis.llen("echo:echo"), timeout=60, what="the worker to finish")
        time.sleep(max(0.0, 10 - (time.monotonic() - down_since)))  # the fault's length
    finally:
        stack.postgres.start()
    # Completions that arrived meanwhile are recorded now, and new jobs are taken again.
    for job_id in accepted:
        wait_status(http, gateway, auth, job_id, "succeeded", timeout=120)
    assert http.get(f"{gateway}/health").status_code == 200
    after = submit_echo(http, gateway, auth)
    wait_status(http, gateway, auth, after, "succeeded")
    assert_jobs_final_exactly_once(sessions, stack.redis, accepted + [after])
    assert_no_orphan_media(sessions, stack.env["MEDIA_DIR"])


def test_redis_restart_keeps_queued_and_running_jobs(http, gateway, auth, stack, sessions,
                                                     echo_worker):
    echo_worker("fault-redis")
    running = submit_echo(http, gateway, auth, steps=30, step_seconds=0.1)
    wait_status(http, gateway, auth, running, "started")
    queued = [submit_echo(http, gateway, auth, **WORK) for _ in range(3)]
    stack.redis_server.stop()  # SIGTERM: Redis writes its AOF and exits
    stack.redis_server.start()  # same port and data: the queues come back
    for job_id in [running] + queued:
        wait_status(http, gateway, auth, job_id, ("succeeded", "failed"), timeout=180)
    assert_jobs_final_exactly_once(sessions, stack.redis, [running] + queued)
    assert all(wait_status(http, gateway, auth, j, "succeeded") for j in [running] + queued)
    assert_no_orphan_media(sessions, stack.env["MEDIA_DIR"])


def test_broker_connections_dropped_mid_job(http, gateway, auth, stack, sessions,
                                            echo_worker):
    """Every client's connection to Redis is cut while a job runs and others wait: the
    worker, recorder, controller and gateway reconnect, and each job ends once."""
    echo_worker("fault-conn")
    running = submit_echo(http, gateway, auth, steps=30, step_seconds=0.1)
    wait_status(http, gateway, auth, running, "started")
    queued = [submit_echo(http, gateway, auth, **WORK) for _ in range(2)]
    killed = stack.redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert killed > 0
    for job_id in [running] + queued:
        wait_status(http, gateway, auth, job_id, "succeeded", timeout=180)
    assert_jobs_final_exactly_once(sessions, stack.redis, [running] + queued)
