"""Streamed answers of chat completions: /llm with "stream": true (go-livepeer's
text/event-stream of `data: {chunk}` events, then `data: [DONE]`) and
/v1/chat/completions with "stream": true (OpenAI's: the same chunks). The job goes
through the same machinery as any other (queue, claim, cancel, deadline, payment): the
worker's step callback takes each new piece of text, its watch sends the pieces with its
progress event (within 50 ms), the recorder publishes them (tasks/live.py), and this turns
them into chunks as they come.

The gateway follows the job's events (app/hub.py) before the job is queued, so no chunk
falls before the subscription. Pub/sub may drop events while Redis reconnects: the last
chunk then carries whatever text the stream missed, from the job's recorded answer."""

import json
import time

from flask import Response, stream_with_context

from app import extensions as ext
from app.hub import Follow
from app.store.tables import Job
from tasks import live
from tasks.status import FINAL_STATUSES, JobStatus

KEEPALIVE_SECONDS = 15.0


def wanted(req) -> bool:
    return bool(getattr(req, "stream", False))


def respond(job: Job, enqueue) -> Response:
    """Enqueues the job (enqueue()) and answers its chunks as a text/event-stream."""
    follow = ext.hub().follow(job.id)
    try:
        enqueue()
    except BaseException:
        follow.close()
        raise
    job_id, sessions = job.id, ext.sessions()
    timeout = ext.settings().sync_timeout_seconds
    ext.session().close()  # hold no connection while the job runs
    return Response(stream_with_context(events(job_id, follow, sessions, timeout)),
                    mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                             "X-Job-Id": job_id})


def data(payload) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def events(job_id: str, follow: Follow, sessions, timeout: float):
    streamed = ""
    try:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = follow.next(min(left, KEEPALIVE_SECONDS))
            if event is None:
                yield ": keepalive\n\n"
                continue
            for chunk in event.get("chunks", []):
                streamed += delta_text(chunk)
                yield data(chunk)
            if live.is_final_event(event):
                break
        with sessions() as session:
            yield from closing(session.get(Job, job_id), streamed)
    finally:
        follow.close()


def closing(job: Job, streamed: str):
    """The last chunk (what the stream missed, the finish reason, the usage) and
    [DONE]; or an error event, as OpenAI's streams carry one."""
    if job.status != JobStatus.SUCCEEDED:
        message = (job.error or f"The job was {job.status}." if job.status in FINAL_STATUSES
                   else f"The job is still running; follow it at /jobs/{job.id}.")
        yield data({"error": {"message": message}})
        return
    body = job.result["body"]
    choice = body["choices"][0]
    text = choice["message"]["content"]
    tail = text[len(streamed):] if text.startswith(streamed) else ""
    yield data({"id": body["id"], "object": "chat.completion.chunk", "created": body["created"],
                "model": body["model"], "usage": body["usage"],
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": tail},
                             "finish_reason": choice["finish_reason"]}]})
    yield "data: [DONE]\n\n"


def delta_text(chunk: dict) -> str:
    try:
        return chunk["choices"][0]["delta"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return ""
