"""The recorder reads what operators' workers say in batches and records a batch's job
events in one transaction (app/recorder.py, app/journal.py): each event is still
applied in order and as it left the job, and one event that cannot be recorded holds up
none of the others."""

import json
import os
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from redis.exceptions import ResponseError
from sqlalchemy import select

from app.api.auth import hash_key
from app.recorder import GROUP
from app.store import jobs
from app.store.tables import ApiKey, Job, WebhookDelivery
from support import wait_for
from tasks import control, envelope, names
from tasks.messages import Output, WorkerEvent

pytestmark = pytest.mark.fault
WORKER = "batch-ghost"  # no such process: the events below are its whole life


@pytest.fixture(autouse=True)
def ghost_beats(stack):
    """The ghost's heartbeat, as its worker would write it: without one, the controller
    takes back a job the ghost started as soon as it looks (its claimant is gone)."""
    key = names.worker_key(stack.operator_id, WORKER)
    stack.redis.set(key, json.dumps({"id": WORKER, "boot": "b1", "queues": [], "models": [],
                                     "busy": None, "at": time.time()}), ex=600)
    yield
    stack.redis.delete(key)


class Accepting(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Accepting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def queued_job(sessions, stack, api_key, webhook_url=None) -> str:
    """A job as intake leaves it, without its message: its row and its control record."""
    with sessions() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(api_key)))
        job = jobs.new_job(str(uuid.uuid4()), key_id, "echo", "echo", {}, 1, "echo:echo")
        if webhook_url:
            job.webhook_url, job.webhook_events = webhook_url, ["started", "succeeded"]
        session.add(job)
        session.commit()
    assert control.init(stack.redis, job.id, None, 60.0, time.time())
    return job.id


def event(job_id: str, status: str, **fields) -> WorkerEvent:
    return WorkerEvent(**{"job_id": job_id, "status": status, "at": time.time(),
                          "worker": WORKER, "boot": "b1", "attempt": 1,
                          "started_at": time.time(), **fields})


def signed(stack, e: WorkerEvent) -> dict:
    """The stream entry of the stack's operator's event."""
    key = bytes.fromhex(stack.operator_env["OPERATOR_TOKEN"])
    return envelope.Envelope(stack.operator_id, envelope.JOB, e.model_dump_json().encode(),
                             e.blobs()).fields(key)


def reads(stack, stream: str) -> bool:
    """Whether the recorder's consumer group is on the stream."""
    try:
        return any(g["name"] in (GROUP, GROUP.encode())
                   for g in stack.redis.xinfo_groups(stream))
    except ResponseError:  # no stream yet
        return False


def send(stack, e: WorkerEvent) -> str:
    return stack.redis.xadd(names.operator_events(stack.operator_id), signed(stack, e))


def send_at_once(stack, events: list[WorkerEvent]) -> None:
    """Added in one transaction: the recorder, which waits on the stream, reads them
    all in one go."""
    with stack.redis.pipeline(transaction=True) as pipe:
        for e in events:
            pipe.xadd(names.operator_events(stack.operator_id), signed(stack, e))
        pipe.execute()


def status_of(sessions, job_id: str) -> str:
    with sessions() as session:
        return session.get(Job, job_id).status


def transactions(sessions, table: str, job_ids: list[str]) -> set[int]:
    """The transactions that last wrote the jobs' rows (PostgreSQL's xmin)."""
    from sqlalchemy import text

    column = "id" if table == "jobs" else "job_id"
    with sessions() as session:
        return {row[0] for row in session.execute(
            text(f"SELECT xmin::text::bigint FROM {table} WHERE {column} = ANY(:ids) "
                 "AND status <> 'queued'"), {"ids": job_ids})}


def test_a_batch_is_recorded_in_one_transaction_each_event_as_it_left_the_job(
        stack, gateway, sessions, api_key, hook_url):
    answered = queued_job(sessions, stack, api_key, hook_url)
    failed = queued_job(sessions, stack, api_key)
    send_at_once(stack, [event(answered, "started"),
                         event(answered, "succeeded", outputs=[Output.from_answer({"a": 1}, 0)]),
                         event(failed, "failed", error="asked to fail")])
    wait_for(lambda: status_of(sessions, answered) == "succeeded"
             and status_of(sessions, failed) == "failed", timeout=30, what="the batch recorded")
    assert len(transactions(sessions, "jobs", [answered, failed])
               | transactions(sessions, "job_events", [answered, failed])) == 1

    with sessions() as session:
        job = session.get(Job, answered)
        assert [h.status for h in job.history] == ["queued", "started", "succeeded"]
        sent = session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == answered)
                               .order_by(WebhookDelivery.id)).all()
    # Each delivery tells of the job as its own event left it.
    assert [(d.event, d.payload["job"]["status"]) for d in sent] == \
        [("started", "started"), ("succeeded", "succeeded")]
    assert [[h["status"] for h in d.payload["job"]["history"]] for d in sent] == \
        [["queued", "started"], ["queued", "started", "succeeded"]]


def test_a_final_event_carries_the_job_as_its_transaction_committed_it(
        stack, gateway, sessions, api_key):
    """What a stream's end and a synchronous answer show without reading the job: the
    row as committed, with the history rows it had and those its batch added, in time
    order, also when the worker's clock runs behind the gateway's."""
    job_id = queued_job(sessions, stack, api_key)
    behind = time.time() - 60
    with stack.redis.pubsub() as pubsub:
        pubsub.subscribe(names.job_channel(job_id))
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        send_at_once(stack, [event(job_id, "started", at=behind, started_at=behind),
                             event(job_id, "succeeded", started_at=behind,
                                   outputs=[Output.from_answer({"a": 1}, 0)])])
        final = final_event(pubsub)
    with sessions() as session:
        committed = jobs.job_record(jobs.with_history(session, job_id))
    assert [h["status"] for h in committed["history"]] == ["started", "queued", "succeeded"]
    assert instants(final["job"]) == instants(committed)


def final_event(pubsub) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=deadline - time.monotonic())
        if message and message["type"] == "message":
            found = json.loads(message["data"])
            if found["event"] in ("succeeded", "failed", "canceled"):
                return found
    raise AssertionError("no final event within 30 s")


def instants(record: dict) -> dict:
    """A job's record with its times as instants (a row read back may name another
    time zone than the one it was written in)."""
    def at(value):
        return datetime.fromisoformat(value) if value else value
    return {**record, **{k: at(record[k]) for k in ("created_at", "started_at", "finished_at")},
            "history": [{**h, "at": at(h["at"])} for h in record["history"]]}


def test_a_jobs_end_right_after_its_start_is_recorded_with_it(stack, gateway, sessions,
                                                             api_key):
    """A short job: the recorder, having read its start, waits a moment for its end
    (RECORDER_LINGER_MS), so that the end does not queue behind a transaction of its
    own."""
    job_id = queued_job(sessions, stack, api_key)
    stream = names.operator_events(stack.operator_id)
    wait_for(lambda: reads(stack, stream), timeout=30, what="the recorder to read the stream")
    start = send(stack, event(job_id, "started"))
    wait_for(lambda: stack.redis.xpending_range(stream, GROUP, start, start, 1),
             timeout=30, interval=0.001, what="the recorder to read the start")
    send(stack, event(job_id, "succeeded", outputs=[Output.from_answer({"a": 1}, 0)]))
    wait_for(lambda: status_of(sessions, job_id) == "succeeded", timeout=30,
             what="the job recorded")
    assert len(transactions(sessions, "job_events", [job_id])) == 1


def test_an_event_that_cannot_be_recorded_holds_up_no_other_in_its_batch(
        stack, gateway, sessions, api_key):
    answered = queued_job(sessions, stack, api_key)
    imaged = queued_job(sessions, stack, api_key)
    failed = queued_job(sessions, stack, api_key)
    media = stack.env["MEDIA_DIR"]
    aside = f"{media}.aside"
    os.rename(media, aside)
    open(media, "w").close()  # a file where the folder was: the image cannot be stored
    try:
        send_at_once(stack, [
            event(answered, "succeeded", outputs=[Output.from_answer({"a": 1}, 0)]),
            event(imaged, "succeeded", outputs=[Output.from_bytes(b"\x89PNG", "image/png", 7)]),
            event(failed, "failed", error="asked to fail")])
        wait_for(lambda: status_of(sessions, answered) == "succeeded"
                 and status_of(sessions, failed) == "failed", timeout=30,
                 what="the events the store's failure does not touch")
        assert status_of(sessions, imaged) == "queued"  # its success waits for the store
        assert "a batch of 3 events failed; recording them one by one" in stack.log("recorder")
    finally:
        os.remove(media)
        os.rename(aside, media)
    wait_for(lambda: status_of(sessions, imaged) == "succeeded", timeout=60,
             what="the image recorded once the store is back")


def test_a_streamed_answers_chunks_read_with_its_start_reach_its_followers(
        stack, gateway, sessions, api_key):
    """The recorder fell behind and reads a job's start and its first chunks together:
    the chunks come from the claimant, so they are told, before the start is recorded."""
    job_id = queued_job(sessions, stack, api_key)
    chunk = {"choices": [{"index": 0, "delta": {"content": "hello"}}]}
    follower = stack.redis.pubsub()
    follower.subscribe(names.job_channel(job_id))
    try:
        send_at_once(stack, [event(job_id, "started"),
                             event(job_id, "progress", step=1, total=2, chunks=[chunk])])
        heard = []

        def hear_the_start() -> bool:
            message = follower.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                heard.append(json.loads(message["data"]))
            return any(e.get("event") == "started" for e in heard)

        wait_for(hear_the_start, timeout=30, interval=0, what="the start told")
    finally:
        follower.close()
    assert [e for e in heard if e.get("event") == "progress"] == [
        {"event": "progress", "step": 1, "total": 2, "progress": 0.5, "chunks": [chunk]}]
    send_at_once(stack, [event(job_id, "succeeded", outputs=[Output.from_answer({}, 0)])])
    wait_for(lambda: status_of(sessions, job_id) == "succeeded", timeout=30, what="its end")
