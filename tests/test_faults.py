"""Faults of the shared state with real processes: PostgreSQL away, Redis killed (no
shutdown) for longer than a heartbeat lives, every connection to Redis cut (clients that
wait on pub/sub included), while a job runs (its worker's heartbeat names it and it has
progressed), others wait in the queue, and clients wait for answers. Afterwards every
accepted job is final exactly once (tests/conftest.py checks it, as after every fault)."""

import threading
import time
import uuid

import pytest
import requests

from devstack.stack import wait_for
from support import job, submit_echo, wait_status

pytestmark = pytest.mark.fault
WORK = {"steps": 10, "step_seconds": 0.1}  # 1 s each
LONG = {"steps": 60, "step_seconds": 0.1}  # 6 s: the fault lands mid-run


def running(http, gateway, auth, stack, worker: str, job_id: str) -> None:
    wait_for(lambda: (stack.heartbeat(worker) or {}).get("busy") == job_id
             and job(http, gateway, auth, job_id)["progress"] > 0,
             timeout=60, what=f"{worker} to run {job_id}")


def queued(stack, job_id: str) -> bool:
    """The job's message waits in one of its queue's lists (one per priority); the
    message's headers name its task, the job id and attempt, in plain JSON."""
    task_id = f'"{job_id}.'.encode()
    return any(task_id in message
               for key in stack.redis.scan_iter("echo:echo*")
               if stack.redis.type(key) == b"list"
               for message in stack.redis.lrange(key, 0, -1))


class Waiting:
    """A synchronous request and an SSE stream waiting on jobs through a fault."""

    def __init__(self, gateway, auth):
        self.answers: dict[str, object] = {}
        self.threads = []
        # The stream's first event (the job's state) is sent after the gateway follows
        # the job: from then on no event of it is missed.
        self.streaming = threading.Event()
        self.gateway, self.auth = gateway, auth

    def sync(self, body: dict) -> None:
        """A synchronous request; wait on enqueued() before the fault, or the request may
        come during it (and rightly get a 503)."""
        self.sync_prompt = body["prompt"]

        def run():
            answer = requests.post(f"{self.gateway}/echo", json=body, headers=self.auth,
                                   timeout=180)
            self.answers["sync"] = answer.status_code
        self._start(run)

    def events(self, job_id: str) -> None:
        def run():
            with requests.get(f"{self.gateway}/jobs/{job_id}/events", headers=self.auth,
                              stream=True, timeout=180) as stream:
                last = None
                for line in stream.iter_lines(decode_unicode=True):
                    if line.startswith("event: "):
                        last = line[len("event: "):]
                        self.streaming.set()
                self.answers["events"] = last
        self._start(run)

    def enqueued(self, stack, sessions) -> bool:
        """The synchronous request's job is committed and its message is in its queue.
        Its control record alone is not enough: the gateway writes it just before it
        sends the message, and Redis killed in between rightly fails the request."""
        from sqlalchemy import select

        from app.store.tables import Job

        with sessions() as session:
            rows = session.execute(select(Job.id, Job.params).where(Job.pipeline == "echo")
                                   .order_by(Job.created_at.desc()).limit(20)).all()
        return any(params.get("prompt") == self.sync_prompt and queued(stack, job_id)
                   for job_id, params in rows)

    def _start(self, target) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)

    def done(self) -> dict:
        for thread in self.threads:
            thread.join(180)
        return self.answers


def test_postgres_down_for_10s_answers_503_and_recovers(http, gateway, auth, stack,
                                                        echo_worker):
    echo_worker("fault-pg")
    accepted = [submit_echo(http, gateway, auth, **WORK) for _ in range(4)]
    running(http, gateway, auth, stack, "fault-pg", accepted[0])
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


def test_redis_killed_for_longer_than_a_heartbeat_loses_nothing(http, gateway, auth, stack,
                                                                sessions,
                                                                echo_worker):
    """Redis is SIGKILLed mid-job and stays away past every heartbeat's life: the running
    job is taken again (its worker seemed gone), its first run stops, and every job, the
    ones waiting in the queue and those clients wait on, ends once."""
    from devstack.stack import TIME_SCALE

    echo_worker("fault-redis")
    run = submit_echo(http, gateway, auth, **LONG)
    running(http, gateway, auth, stack, "fault-redis", run)
    queued = [submit_echo(http, gateway, auth, **WORK) for _ in range(2)]
    waiting = Waiting(gateway, auth)
    waiting.sync({"prompt": f"waits through it {uuid.uuid4()}", **WORK})
    waiting.events(queued[0])
    assert waiting.streaming.wait(30), "the stream's first event"
    wait_for(lambda: waiting.enqueued(stack, sessions), timeout=30,
             what="the synchronous request's job, enqueued")
    stack.redis_server.kill()
    time.sleep(3 * 5 * TIME_SCALE + 2)  # the outage: longer than a heartbeat lives
    stack.redis_server.start()  # same port and data: the queues come back
    for job_id in [run] + queued:
        assert wait_status(http, gateway, auth, job_id, ("succeeded", "failed"),
                           timeout=180)["status"] == "succeeded"
    assert waiting.done() == {"sync": 200, "events": "succeeded"}


def test_every_connection_to_redis_cut_mid_job(http, gateway, auth, stack, sessions,
                                                echo_worker):
    """Every client's connection to Redis is cut, those that wait on pub/sub too, while a
    job runs and others wait: every process reconnects, every waiting client gets its
    answer, and each job ends once."""
    echo_worker("fault-conn")
    run = submit_echo(http, gateway, auth, **LONG)
    running(http, gateway, auth, stack, "fault-conn", run)
    queued = [submit_echo(http, gateway, auth, **WORK) for _ in range(2)]
    waiting = Waiting(gateway, auth)
    waiting.sync({"prompt": f"waits through it {uuid.uuid4()}", **WORK})
    waiting.events(queued[0])
    assert waiting.streaming.wait(30), "the stream's first event"
    wait_for(lambda: waiting.enqueued(stack, sessions), timeout=30,
             what="the synchronous request's job, enqueued")
    cut = sum(stack.redis.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes")
              for kind in ("normal", "pubsub"))
    assert cut > 0
    for job_id in [run] + queued:
        wait_status(http, gateway, auth, job_id, "succeeded", timeout=180)
    assert waiting.done() == {"sync": 200, "events": "succeeded"}
