"""Hundreds of clients waiting at once on one gateway process (gunicorn's gevent worker
and the hub of app/hub.py): synchronous requests and SSE streams on queued jobs cost no
thread and no Redis connection each, the gateway keeps answering, and every one of them
hears of its job's end."""

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select, update

from support import make_key, set_consuming, submit_echo, wait_for
from tasks import control, names

SYNC_CLIENTS = 150
SSE_JOBS, FOLLOWERS_EACH = 15, 10  # 150 streams, ten on each job
QUEUE = names.model_queue("echo", "echo")
WAITING = SYNC_CLIENTS + SSE_JOBS * FOLLOWERS_EACH
# The gateway's own pool; Celery's publishes share theirs (broker_pool_limit, 10).
REDIS_POOL = 16


@pytest.fixture(scope="module")
def waiting_gateway(stack, recorder, controller):
    """One gateway process, so that it alone holds every waiting client."""
    url = stack.start_gateway("gateway-waiting", workers=1, env={
        "MAX_ACTIVE_JOBS_PER_KEY": "10000", "ADMISSION_MAX_WAIT_SECONDS": "100000",
        "RATE_LIMIT_PER_MINUTE": "100000", "REDIS_MAX_CONNECTIONS": str(REDIS_POOL)})
    return url, gunicorn_worker_pid(stack.procs[-1].pid)


def gunicorn_worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children")
    wait_for(lambda: children.read_text().split(), timeout=30, what="gunicorn's worker")
    return int(children.read_text().split()[0])


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def sse_events(response):
    """(event, data) pairs of a text/event-stream, as they come."""
    name = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            yield name, json.loads(line[len("data: "):])


def test_hundreds_of_waiting_clients_cost_no_thread_or_connection_each_and_all_hear_the_end(
        stack, sessions, waiting_gateway, echo_worker):
    gateway, pid = waiting_gateway
    key = make_key(sessions, "waiting-many")
    auth = {"Authorization": f"Bearer {key}"}
    echo_worker("waiting-slot")
    set_consuming(stack, "waiting-slot", QUEUE, False)  # every job stays queued
    with requests.Session() as http:
        followed = [submit_echo(http, gateway, auth) for _ in range(SSE_JOBS)]
    threads_before = threads_of(pid)
    clients_before = stack.redis.info("clients")["connected_clients"]

    streams_open = []

    def follow(job_id: str) -> str:
        with requests.get(f"{gateway}/jobs/{job_id}/events", headers=auth, stream=True,
                          timeout=300) as response:
            events = sse_events(response)
            first, _ = next(events)
            streams_open.append(first)
            return [name for name, _ in events][-1]

    def wait_sync(_) -> tuple[int, dict]:
        answer = requests.post(f"{gateway}/echo", json={"prompt": "wait"}, headers=auth,
                               timeout=300)
        return answer.status_code, answer.json()

    pool = ThreadPoolExecutor(WAITING)
    try:
        endings = [pool.submit(follow, job_id) for job_id in followed * FOLLOWERS_EACH]
        answers = [pool.submit(wait_sync, n) for n in range(SYNC_CLIENTS)]
        wait_for(lambda: len(streams_open) == len(endings), timeout=120,
                 what="every stream's first event")
        wait_for(lambda: queued_jobs(sessions, key) == SSE_JOBS + SYNC_CLIENTS, timeout=120,
                 what="every synchronous request's job, queued")

        # All of them wait now: the gateway still answers, on a few threads (gevent's
        # own pool for name lookups), not one per client, and through the Redis
        # connections of its pool and the hub's one subscriber.
        assert set(streams_open) == {"queued"}
        health = requests.get(f"{gateway}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert threads_of(pid) <= threads_before + 10 < WAITING // 4
        clients_now = stack.redis.info("clients")["connected_clients"]
        assert clients_now - clients_before < WAITING // 4, (clients_before, clients_now)
    finally:  # the jobs run, so that every waiter ends, whatever failed above
        set_consuming(stack, "waiting-slot", QUEUE, True)
    assert {ending.result(timeout=300) for ending in endings} == {"succeeded"}
    results = [answer.result(timeout=300) for answer in answers]
    pool.shutdown()
    assert {status for status, _ in results} == {200}
    assert all(body for _, body in results)


def queued_jobs(sessions, key: str) -> int:
    from app.api.auth import hash_key
    from app.store.tables import ApiKey, Job

    with sessions() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key)))
        return session.scalar(select(func.count()).select_from(Job).where(
            Job.api_key_id == key_id, Job.status == "queued"))


def test_a_stream_whose_final_event_was_lost_still_ends_from_the_database(
        stack, sessions, auth, waiting_gateway, echo_worker):
    """A recorder that committed a job's end and died before publishing it: its
    followers hear of it from the hub's recheck of the database."""
    gateway, _ = waiting_gateway
    echo_worker("waiting-lost")
    set_consuming(stack, "waiting-lost", QUEUE, False)
    with requests.Session() as http:
        job_id = submit_echo(http, gateway, auth)
        with http.get(f"{gateway}/jobs/{job_id}/events", headers=auth, stream=True,
                      timeout=60) as response:
            events = sse_events(response)
            assert next(events)[0] == "queued"
            # What the recorder does for a cancel, but for its publish.
            assert control.cancel(stack.redis, job_id)[0]
            from app.store.tables import Job

            with sessions.begin() as session:
                session.execute(update(Job).where(Job.id == job_id).values(status="canceled"))
            assert [name for name, _ in events] == ["canceled"]


def test_a_stream_opened_between_a_commit_and_its_publish_tells_the_state_once(
        stack, sessions, auth, waiting_gateway, echo_worker):
    """The recorder commits a job's start, then publishes it: a stream opened in
    between reads the start in its snapshot and hears it again; it tells it once, and
    what follows as it comes."""
    from app.store.tables import Job

    gateway, _ = waiting_gateway
    echo_worker("waiting-once")
    set_consuming(stack, "waiting-once", QUEUE, False)
    channel = names.job_channel
    with requests.Session() as http:
        job_id = submit_echo(http, gateway, auth)
        with sessions.begin() as session:  # the recorder's commit of the start
            session.execute(update(Job).where(Job.id == job_id).values(status="started"))
        with http.get(f"{gateway}/jobs/{job_id}/events", headers=auth, stream=True,
                      timeout=60) as response:
            events = sse_events(response)
            assert next(events)[0] == "started"
            # ... its publish, a step, then the job's end (what a cancel records).
            stack.redis.publish(channel(job_id), json.dumps({"event": "started"}))
            stack.redis.publish(channel(job_id), json.dumps(
                {"event": "progress", "step": 1, "total": 2, "progress": 0.5}))
            assert control.cancel(stack.redis, job_id)[0]
            with sessions.begin() as session:
                session.execute(update(Job).where(Job.id == job_id).values(status="canceled"))
            stack.redis.publish(channel(job_id), json.dumps({"event": "canceled"}))
            assert [name for name, _ in events] == ["progress", "canceled"]


def test_followers_answer_from_the_record_the_final_event_carries(
        stack, sessions, auth, waiting_gateway, echo_worker):
    """The recorder's final event carries the job's record (app/store/jobs.py job_record):
    a synchronous request and an SSE stream answer from it without reading the job. Here
    the event is ours and the database still says queued; then a real end, whose final
    event is the job as GET /jobs/<id> shows it."""
    from app.store.jobs import job_record
    from app.store.tables import Job

    gateway, _ = waiting_gateway
    echo_worker("waiting-record")
    set_consuming(stack, "waiting-record", QUEUE, False)
    marker = f"record-{uuid.uuid4()}"

    def job_of_marker():
        with sessions() as session:
            jobs = session.scalars(select(Job).order_by(Job.created_at.desc()).limit(50)).all()
            return next((job.id for job in jobs if job.params.get("prompt") == marker), None)

    with requests.Session() as http, ThreadPoolExecutor(1) as pool:
        sync = pool.submit(requests.post, f"{gateway}/echo", json={"prompt": marker}, headers=auth, timeout=60)
        job_id = wait_for(job_of_marker, timeout=30, what="the synchronous request's job")
        wait_for(lambda: control.read(stack.redis, job_id), timeout=30, what="its job enqueued (followed)")
        with http.get(f"{gateway}/jobs/{job_id}/events", headers=auth, stream=True, timeout=60) as response:
            events = sse_events(response)
            assert next(events)[0] == "queued"
            with sessions() as session:
                record = job_record(session.get(Job, job_id))
            record.update(status="succeeded", result={"text": "from the final event"})
            stack.redis.publish(names.job_channel(job_id), json.dumps({"event": "succeeded", "job": record}))
            [(name, view)] = list(events)
        assert (name, view["status"], view["result"]) == ("succeeded", "succeeded", {"text": "from the final event"})
        answer = sync.result()
        assert (answer.status_code, answer.json()) == (200, {"text": "from the final event"})

        # A real end: its final event is the job as the route shows it, history and all.
        ran = submit_echo(http, gateway, auth)
        with http.get(f"{gateway}/jobs/{ran}/events", headers=auth, stream=True, timeout=60) as response:
            events = sse_events(response)
            assert next(events)[0] == "queued"
            set_consuming(stack, "waiting-record", QUEUE, True)
            name, final = list(events)[-1]
        assert name == "succeeded"
        assert final == http.get(f"{gateway}/jobs/{ran}", headers=auth, timeout=10).json()
        wait_for(lambda: http.get(f"{gateway}/jobs/{job_id}", headers=auth, timeout=10).json()["status"]
                 == "succeeded", timeout=60, what="the first job's real end")
