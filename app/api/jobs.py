"""Following a job: GET /jobs/<id>, its server-sent events, and cancel."""

import json

from flask import Blueprint, Response, request, stream_with_context

from app import extensions as ext, metrics
from app.api.auth import authenticate
from app.api.errors import ApiError
from app.store import jobs
from app.store.tables import Job
from app.webhooks import notify
from tasks import control, live
from tasks.status import FINAL_STATUSES, JobStatus

bp = Blueprint("jobs", __name__)
KEEPALIVE_SECONDS = 15.0


def owned_job(job_id: str) -> Job:
    """The job, if the caller's key made it (or the caller is an admin); 404 otherwise,
    so one key cannot learn that another key's job exists."""
    key = authenticate()
    job = ext.session().get(Job, job_id) if len(job_id) <= 36 else None
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
    """A queued job never runs; a running one stops at its next step. Never charged."""
    job = owned_job(job_id)
    session = ext.session()
    control.cancel(ext.redis(), job.id)
    canceled = jobs.cancel_job(session, job.id)
    session.commit()
    if canceled is None:
        raise ApiError(409, f"The job already {session.get(Job, job_id).status}.")
    live.publish(ext.redis(), job.id, {"event": JobStatus.CANCELED})
    metrics.canceled(canceled)
    notify(ext.celery(), canceled, JobStatus.CANCELED, ext.media_links(request.host_url))
    return job_view(canceled)


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@bp.get("/jobs/<job_id>/events")
def events(job_id: str):
    """Server-sent events: the job's state now, then started, progress (step, total,
    fraction) and the final event with the result or the error, then the stream ends."""
    job = owned_job(job_id)
    redis, sessions = ext.redis(), ext.sessions()
    links = ext.media_links(request.host_url)
    follower = live.Follower(redis, job.id)  # before the snapshot: nothing falls between
    ext.session().refresh(job)
    snapshot = job_view(job)
    ext.session().close()

    def final(job_id: str) -> str:
        with sessions() as session:
            view = jobs.public_view(session.get(Job, job_id), links, None)
        return sse(view["status"], view)

    def stream():
        try:
            yield sse(snapshot["status"], snapshot)
            if snapshot["status"] in FINAL_STATUSES:
                return
            while True:
                event = follower.next(KEEPALIVE_SECONDS)
                if event is None:
                    yield ": keepalive\n\n"
                    continue
                if live.is_final_event(event):
                    yield final(job_id)
                    return
                name = event.pop("event")
                yield sse(name, event)
        finally:
            follower.close()

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
