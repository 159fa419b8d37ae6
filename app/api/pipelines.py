"""Livepeer's pipeline routes: synchronous by default, 202 with Prefer: respond-async."""

import logging

from flask import Blueprint, current_app, request
from sqlalchemy import select

from app import db, extensions as ext, jobs, live
from app.auth import authenticate
from app.errors import ApiError
from app.models import FINAL_STATUSES, ApiKey, Job
from app.routing import choose_queue
from app.schemas import Limits, PipelineRequest, TextToImageRequest

log = logging.getLogger(__name__)
bp = Blueprint("pipelines", __name__)


@bp.post("/text-to-image")
def text_to_image():
    key = authenticate()
    return submit(key, "text-to-image", TextToImageRequest.model_validate(json_body()), {})


def json_body() -> dict:
    if not request.is_json:
        raise ApiError(415, "Content-Type must be application/json.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return body


def resolve_model(pipeline: str, requested: str) -> str:
    model_id = requested or ext.catalog().default_model(pipeline)
    if not model_id or ext.catalog().find(pipeline, model_id) is None:
        raise ApiError(400, f"Unknown model {requested!r} for {pipeline}.")
    return model_id


def submit(key: ApiKey, pipeline: str, req: PipelineRequest, inputs: dict[str, bytes]):
    """Checks, routes, records and enqueues a job; then answers at once (async) or when
    the job ends (sync). A rejected request leaves no row and no message."""
    req.check(Limits.from_config(current_app.config))
    model_id = resolve_model(pipeline, req.model_id)
    queue = choose_queue(ext.redis(), pipeline, model_id)
    session = db.session()
    job = jobs.new_job(key.id, pipeline, model_id, req.worker_params(),
                       req.billable_units(inputs), queue)
    session.add(job)
    session.commit()
    if "respond-async" in request.headers.get("Prefer", ""):
        enqueue_or_withdraw(job, inputs)
        return async_answer(job)
    with live.follow(ext.redis(), job.id) as events:
        enqueue_or_withdraw(job, inputs)
        session.close()  # hold no connection while the job runs
        ended = live.wait_final(events, current_app.config["SYNC_TIMEOUT_SECONDS"],
                                lambda: job_status(job.id) in FINAL_STATUSES)
    if not ended:
        raise ApiError(504, f"The job is still running; follow it at /jobs/{job.id}.")
    return sync_answer(db.session().get(Job, job.id))


def enqueue_or_withdraw(job: Job, inputs: dict[str, bytes]) -> None:
    try:
        jobs.enqueue(ext.celery(), job, inputs)
    except Exception:
        log.exception("enqueue of job %s failed", job.id)
        session = db.session()
        session.delete(session.merge(job))
        session.commit()
        raise ApiError(503, "The job queue is unavailable; try again.", {"Retry-After": "5"})


def job_status(job_id: str) -> str | None:
    with current_app.extensions["db"]() as session:
        return session.scalar(select(Job.status).where(Job.id == job_id))


def async_answer(job: Job):
    body = {"id": job.id, "status": job.status, "pipeline": job.pipeline,
            "model_id": job.model_id, "created_at": jobs.iso(job.created_at),
            "url": f"{request.host_url}jobs/{job.id}",
            "events_url": f"{request.host_url}jobs/{job.id}/events"}
    return body, 202, {"Location": f"/jobs/{job.id}"}


def sync_answer(job: Job):
    if job.status == "succeeded":
        return jobs.render_result(job.result, request.host_url)
    if job.status == "failed":
        raise ApiError(500, job.error or "Job failed.")
    raise ApiError(503, f"The job was {job.status}.")
