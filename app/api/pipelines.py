"""Livepeer's pipeline routes: synchronous by default, 202 with Prefer: respond-async."""

import logging
import time

from flask import Blueprint, current_app, request
from sqlalchemy import select

from app import db, extensions as ext, jobs, live
from app.auth import authenticate
from app.errors import ApiError, ValidationFailed
from app.models import FINAL_STATUSES, ApiKey, Job
from app import routing
from app.schemas import REQUESTS, Limits, PipelineRequest
from app.uploads import Upload, read_image

log = logging.getLogger(__name__)
bp = Blueprint("pipelines", __name__)


def pipeline_view(pipeline: str, schema: type[PipelineRequest]):
    def view():
        key = authenticate()
        if schema.CONTENT == "application/json":
            return submit(key, pipeline, schema.model_validate(json_body()), {})
        req, uploads = multipart_body(schema)
        return submit(key, pipeline, req, uploads)

    view.__name__ = pipeline.replace("-", "_")
    return view


for _name, _schema in REQUESTS.items():
    bp.add_url_rule(f"/{_name}", view_func=pipeline_view(_name, _schema), methods=["POST"])


def json_body() -> dict:
    if not request.is_json:
        raise ApiError(415, "Content-Type must be application/json.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return body


def multipart_body(schema: type[PipelineRequest]):
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "Content-Type must be multipart/form-data.")
    missing = [name for name in schema.FILES if not request.files.get(name)]
    if missing:
        detail = [{"loc": ["body", name], "msg": "Field required", "type": "missing"}
                  for name in missing]
        raise ValidationFailed(detail)
    req = schema.model_validate(request.form.to_dict())
    max_side = current_app.config["MAX_IMAGE_SIDE"] // schema.SCALE
    uploads = {name: read_image(name, request.files[name].read(), max_side)
               for name in schema.FILES}
    return req, uploads


def resolve_model(pipeline: str, requested: str) -> str:
    model_id = requested or ext.catalog().default_model(pipeline)
    if not model_id or ext.catalog().find(pipeline, model_id) is None:
        raise ApiError(400, f"Unknown model {requested!r} for {pipeline}.")
    return model_id


def submit(key: ApiKey, pipeline: str, req: PipelineRequest, uploads: dict[str, Upload]):
    """Checks, routes, records and enqueues a job; then answers at once (async) or when
    the job ends (sync). A rejected request leaves no row and no message."""
    req.check(Limits.from_config(current_app.config))
    timing = {"deadline": start_deadline(), "time_limit": time_limit()}
    model_id = resolve_model(pipeline, req.model_id)
    queue = routing.route(ext.redis(), pipeline, model_id)
    session = db.session()
    job = jobs.new_job(key.id, pipeline, model_id, req.worker_params(),
                       req.billable_units(uploads), queue)
    session.add(job)
    session.commit()
    inputs = {name: upload.data for name, upload in uploads.items()}
    if "respond-async" in request.headers.get("Prefer", ""):
        enqueue_or_withdraw(job, inputs, timing)
        return async_answer(job)
    with live.Follower(ext.redis(), job.id) as follower:
        enqueue_or_withdraw(job, inputs, timing)
        session.close()  # hold no connection while the job runs
        ended = follower.wait_final(current_app.config["SYNC_TIMEOUT_SECONDS"],
                                    lambda: job_status(job.id) in FINAL_STATUSES)
    if not ended:
        raise ApiError(504, f"The job is still running; follow it at /jobs/{job.id}.")
    return sync_answer(db.session().get(Job, job.id))


def enqueue_or_withdraw(job: Job, inputs: dict[str, bytes], timing: dict) -> None:
    try:
        jobs.enqueue(ext.celery(), ext.redis(), job, inputs, **timing)
    except Exception:
        log.exception("enqueue of job %s failed", job.id)
        session = db.session()
        session.delete(session.merge(job))
        session.commit()
        raise ApiError(503, "The job queue is unavailable; try again.", {"Retry-After": "5"})


def seconds_header(name: str, longest: float) -> float | None:
    asked = request.headers.get(name)
    if asked is None:
        return None
    try:
        value = float(asked)
    except ValueError:
        raise ApiError(400, f"{name} must be a number of seconds.")
    if not 0 < value <= longest:
        raise ApiError(400, f"{name} must be more than 0 and at most {longest:g}.")
    return value


def time_limit() -> float:
    """X-Time-Limit-Seconds: how long the job may run; at most (and by default) the
    configured longest job."""
    longest = current_app.config["MAX_JOB_SECONDS"]
    return seconds_header("X-Time-Limit-Seconds", longest) or float(longest)


def start_deadline() -> float | None:
    """X-Deadline-Seconds: the job must start within this many seconds, or is aborted."""
    within = seconds_header("X-Deadline-Seconds", 24 * 3600)
    return time.time() + within if within else None


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
