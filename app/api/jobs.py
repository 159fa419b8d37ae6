"""Following a job: GET /jobs/<id>, its server-sent events, and cancel."""

import json
import time

from flask import Blueprint, Response, request, stream_with_context

from app import extensions as ext, metrics
from app.api.auth import authenticate
from app.api.errors import ApiError
from app.api.keys import Key
from app.journal import Journal
from app.store import jobs
from app.store.tables import Job
from tasks import control, live
from tasks.messages import WorkerEvent
from tasks.status import FINAL_STATUSES, PROGRESS, JobStatus

bp = Blueprint("jobs", __name__)
KEEPALIVE_SECONDS = 15.0


def owned_job(job_id: str, key: Key | None = None) -> Job:
    """The job with its history (one query), if the caller's key made it (or the caller
    is an admin); 404 otherwise, so one key cannot learn that another key's job exists."""
    key = key or authenticate()
    job = jobs.with_history(ext.session(), job_id) if len(job_id) <= 36 else None
    if job is None or (job.api_key_id != key.id and key.role != "admin"):
        raise ApiError(404, "Job not found.")
    return job


def job_view(job: Job) -> dict:
    progress = (live.read_progress(ext.redis(), job.id) if job.status == JobStatus.STARTED
                else None)
    return jobs.public_view(job, ext.media_links(request.host_url), progress)


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    return job_view(owned_job(job_id))


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str):
    """A queued job never runs; a running one stops at its next step. Never charged.
    The job's control record decides: a cancel that comes after the job ended (or that
    loses the race with its end) answers 409 with what the job became."""
    job = owned_job(job_id)
    applied, found = control.cancel(ext.redis(), job.id)
    if not applied:
        raise ApiError(409, f"The job already {found}.")
    ext.session().close()
    journal = Journal(ext.sessions(), ext.redis(), ext.media(), ext.media_links(request.host_url))
    journal.record(WorkerEvent(job_id=job.id, status=JobStatus.CANCELED, at=time.time(),
                               worker=""))
    metrics.canceled(job)
    return job_view(jobs.with_history(ext.session(), job_id))


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@bp.get("/jobs/<job_id>/events")
def events(job_id: str):
    """Server-sent events: the job's state now, then started, progress (step, total,
    fraction) and the final event with the result or the error, then the stream ends."""
    key = authenticate()
    sessions, links = ext.sessions(), ext.media_links(request.host_url)
    follow = ext.hub().follow(job_id)  # before the snapshot: nothing falls between
    try:
        snapshot = job_view(owned_job(job_id, key))
    except Exception:
        follow.close()
        raise
    ext.session().close()

    def final(event: dict) -> str:
        """The final event, from the job's record it carries, else from what the database
        holds (the event said it is final)."""
        if "job" in event:
            view = jobs.view_of(event["job"], links, None)
        else:
            with sessions() as session:
                view = jobs.public_view(jobs.with_history(session, job_id), links, None)
        return sse(view["status"], view)

    def stream():
        try:
            yield sse(snapshot["status"], snapshot)
            if snapshot["status"] in FINAL_STATUSES:
                return
            # A stream tells changes of state: the publish of the state the snapshot read
            # (committed, then published a moment later) is not told again.
            told = snapshot["status"]
            while True:
                event = follow.next(KEEPALIVE_SECONDS)
                if event is None:
                    yield ": keepalive\n\n"
                elif live.is_final_event(event):
                    yield final(event)
                    return
                elif event["event"] != told:
                    if event["event"] != PROGRESS:
                        told = event["event"]
                    yield sse(event["event"], {k: v for k, v in event.items() if k != "event"})
        finally:
            follow.close()

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
