"""Livepeer's pipeline routes: synchronous by default, 202 with Prefer: respond-async.

A request is checked, given its fair share, routed and admitted, recorded, then
enqueued; a rejected one leaves no row and no message."""

import hashlib
import json
import logging
import math
import uuid

from flask import Blueprint, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import destinations, extensions as ext, metrics
from app.api import fallback, limits, routing, streaming
from app.api.auth import authenticate
from app.api.errors import ApiError, ValidationFailed
from app.api.keys import Key
from app.api.options import PRIORITIES, JobOptions
from app.hub import Follow
from app.store import inputs as store_inputs
from app.store import jobs
from app.store.tables import Job
from tasks.admission import ask_estimates, wait_from
from tasks.logs import bind_job
from tasks.pipelines import PIPELINES
from tasks.pipelines.base import Limits, PipelineRequest
from tasks.pipelines.inputs import Upload, read_upload
from tasks.status import FINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)
bp = Blueprint("pipelines", __name__)
FALLBACK_QUEUE = "fallback"  # a job's queue when the fallback gateway ran it


def pipeline_view(pipeline: str, schema: type[PipelineRequest]):
    def view():
        key = authenticate()
        if schema.CONTENT == "application/json":
            return submit(key, pipeline, schema.model_validate(json_body(schema)), {})
        req, uploads = multipart_body(schema)
        return submit(key, pipeline, req, uploads)

    view.__name__ = pipeline.replace("-", "_")
    return view


for _spec in PIPELINES.values():
    bp.add_url_rule(_spec.path, view_func=pipeline_view(_spec.name, _spec.request),
                    methods=["POST"])


def json_body(schema: type[PipelineRequest] = PipelineRequest) -> dict:
    if not request.is_json:
        raise ApiError(schema.unsupported_status(), "Content-Type must be application/json.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return body


def multipart_body(schema: type[PipelineRequest]):
    if request.mimetype != "multipart/form-data":
        raise ApiError(schema.unsupported_status(), "Content-Type must be multipart/form-data.")
    missing = [name for name in schema.FILES if not request.files.get(name)]
    if missing:
        detail = [{"loc": ["body", name], "msg": "Field required", "type": "missing"}
                  for name in missing]
        raise ValidationFailed(detail)
    req = schema.model_validate(request.form.to_dict())
    max_side = ext.settings().max_image_side // schema.SCALE
    uploads = {name: read_upload(name, request.files[name].read(), max_side,
                                 schema.unsupported_status())
               for name in schema.FILES}
    return req, uploads


def resolve_model(pipeline: str, req: PipelineRequest) -> str:
    model_id = req.model_id or ext.catalog().default_model(pipeline)
    entry = ext.catalog().find(pipeline, model_id) if model_id else None
    if entry is None:
        raise ApiError(400, f"Unknown model {req.model_id!r} for {pipeline}.")
    req.for_model(entry)
    return model_id


def submit(key: Key, pipeline: str, req: PipelineRequest, uploads: dict[str, Upload]):
    settings = ext.settings()
    req.check_storable()
    req.check(limits_of(settings))
    options = JobOptions.from_headers(request.headers, settings.max_job_seconds,
                                      destinations.parse_allowed(settings.webhook_allow_private))
    model_id = resolve_model(pipeline, req)
    fingerprint = request_fingerprint(pipeline, model_id, req, uploads)
    if options.idempotency_key:
        earlier = idempotent_job(key, options.idempotency_key, fingerprint)
        if earlier is not None:
            return answer(earlier, options)
    job_id = str(uuid.uuid4())
    workers, estimates = admit_to_limits(key, job_id, pipeline, model_id)
    try:
        queue = admit(workers, estimates, pipeline, model_id, options)
    except ApiError as refused:
        metrics.admission_rejected("capacity", pipeline)
        if refused.status != 503 or options.respond_async or not fallback.enabled(settings):
            limits.withdraw_job(ext.redis(), key, job_id)
            raise
        try:
            return forwarded(job_id, key, pipeline, model_id, req, uploads, options, fingerprint)
        finally:  # done (or refused) elsewhere: out of the key's share, in its quota
            limits.job_ended(ext.redis(), key.id, job_id)
    try:
        job, message = create_job(job_id, key, pipeline, model_id, req, uploads, options,
                                  fingerprint, queue)
    except Exception:
        limits.withdraw_job(ext.redis(), key, job_id)
        raise
    bind_job(job.id)  # this request's log lines are about this job from here on
    if message is None:  # the same Idempotency-Key, committed a moment before by a twin
        limits.withdraw_job(ext.redis(), key, job_id)
        return answer(job, options)
    if options.respond_async:
        enqueue_or_withdraw(key, job, message)
        return async_answer(job)
    if streaming.wanted(req):
        return streaming.respond(job, lambda: enqueue_or_withdraw(key, job, message))
    with ext.hub().follow(job.id) as follow:
        enqueue_or_withdraw(key, job, message)
        return wait_and_answer(job.id, follow)


# -- before the job exists ---------------------------------------------------------------

def limits_of(settings) -> Limits:
    return Limits(settings.max_image_side, settings.max_steps, settings.max_images_per_request,
                  settings.upload_limit_bytes, settings.max_llm_tokens)


def request_fingerprint(pipeline: str, model_id: str, req: PipelineRequest,
                        uploads: dict[str, Upload]) -> str:
    """What makes two requests the same, for Idempotency-Key: fields and upload bytes."""
    described = {"pipeline": pipeline, "model_id": model_id,
                 "params": req.model_dump(exclude={"model_id"}),
                 "uploads": {n: hashlib.sha256(u.data).hexdigest() for n, u in uploads.items()}}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def idempotent_job(key: Key, idempotency_key: str, fingerprint: str) -> Job | None:
    with ext.new_session() as session:  # no connection held while the request goes on
        job = session.scalar(select(Job).where(Job.api_key_id == key.id,
                                               Job.idempotency_key == idempotency_key))
    if job is not None and job.request_hash != fingerprint:
        raise ApiError(409, "This Idempotency-Key was used with a different request.")
    return job


def admit_to_limits(key: Key, job_id: str, pipeline: str, model_id: str):
    """The key's daily quota, and its fair share of jobs in flight (one key cannot fill
    the queues), checked and counted at once: a 429 past either. What admit() decides
    from comes in the same round trip: the workers' heartbeats, and the estimates of
    both queues the job may take. (the workers, the estimates' replies)"""
    def ask(pipe):
        limits.ask_admit_job(pipe, key, job_id, ext.settings().max_active_jobs_per_key)
        ask_estimates(pipe, pipeline, model_id)

    workers, (verdict, *estimates) = ext.workers().get_with(
        ext.redis(), ask, execute=ext.shared_redis().execute)
    try:
        limits.admitted(key, verdict)
    except limits.FairShareUsed:
        metrics.admission_rejected("fair_share")
        raise
    return workers, estimates


def admit(workers: list[dict], estimates: list, pipeline: str, model_id: str,
          options: JobOptions) -> str:
    """The queue for the job, when the wait there fits the client's limit; else 503 with
    Retry-After. While a worker that can run it is idle, the wait is zero."""
    try:
        queue = routing.choose_queue(workers, pipeline, model_id)
    except ApiError:  # maybe a worker that beat for the first time a moment ago
        workers, estimates = ext.workers().get_with(
            ext.redis(), lambda pipe: ask_estimates(pipe, pipeline, model_id), fresh=True)
        queue = routing.choose_queue(workers, pipeline, model_id)
    settings = ext.settings()
    limit = options.deadline_seconds or settings.admission_max_wait_by_pipeline.get(
        pipeline, settings.admission_max_wait_seconds)
    wait = wait_from(estimates, workers, queue, pipeline, model_id)
    # DEBUG: it would be a line on every request; a refusal's answer says the estimate.
    log.debug("admission %s: estimated wait %.3fs, limit %gs, %d live worker(s)", queue, wait,
              limit, len(workers))
    if wait > limit:
        raise ApiError(503, f"The estimated wait ({wait:.0f}s) is longer than the limit "
                            f"({limit:g}s); try again later.",
                       {"Retry-After": str(max(1, math.ceil(wait - limit)))})
    return queue


# -- the job -----------------------------------------------------------------------------

def create_job(job_id, key, pipeline, model_id, req, uploads, options: JobOptions,
               fingerprint, queue):
    """Commits the job queued, with its message in its outbox row and the webhook
    delivery it owes, so that whatever happens after the commit, the controller can
    publish it. (job, its message), or (the twin a request with the same
    Idempotency-Key committed a moment before, None). The job is not in the session."""
    job = jobs.new_job(job_id, key.id, pipeline, model_id, req.worker_params(),
                       req.billable_units(uploads), queue)
    job.priority = options.priority
    job.deadline = jobs.from_unix(options.deadline) if options.deadline_seconds else None
    job.idempotency_key = options.idempotency_key
    job.request_hash = fingerprint
    job.webhook_url = options.webhook_url
    job.webhook_events = options.webhook_events
    # A job that ran elsewhere (the fallback) keeps its message as a record only: its
    # uploads stay in it.
    inline_max = math.inf if queue == FALLBACK_QUEUE else ext.settings().inline_input_max_bytes
    inline, linked = store_inputs.message_inputs(
        ext.input_links(), job_id, {name: u.data for name, u in uploads.items()}, inline_max)
    message = jobs.job_message(job, inline, options.deadline, options.time_limit,
                               PRIORITIES[options.priority], ext.settings().gateway_address,
                               linked)
    try:
        ext.new_jobs().insert(job, message, ext.media_links(request.host_url))
    except Exception as exc:  # not committed: its kept uploads are no one's
        store_inputs.discard(ext.media(), job_id, linked)
        if not isinstance(exc, IntegrityError):
            raise
        return idempotent_job(key, options.idempotency_key, fingerprint), None
    return job, message


def enqueue_or_withdraw(key: Key, job: Job, message) -> None:
    try:
        jobs.enqueue(ext.celery(), ext.shared_redis().execute, message)
    except Exception:
        log.exception("enqueue of job %s failed", job.id)
        jobs.delete_unqueued(ext.session(), job.id)
        store_inputs.discard(ext.media(), job.id, message.input_links)
        limits.withdraw_job(ext.redis(), key, job.id)
        raise ApiError(503, "The job queue is unavailable; try again.", {"Retry-After": "5"})


def forwarded(job_id, key, pipeline, model_id, req, uploads, options, fingerprint):
    """Runs the job on the fallback gateway, and records it here with where it ran."""
    settings = ext.settings()
    _, body = fallback.forward(settings, pipeline, type(req), request, uploads)
    job, _ = create_job(job_id, key, pipeline, model_id, req, uploads, options, fingerprint,
                        queue=FALLBACK_QUEUE)
    job = ext.session().get(Job, job.id)
    jobs.finish_elsewhere(job, settings.fallback_gateway_url, body)
    ext.session().commit()
    return body


# -- answers -----------------------------------------------------------------------------

def answer(job: Job, options: JobOptions):
    """The answer for an existing job (an idempotent replay)."""
    if options.respond_async:
        return async_answer(job)
    if job.status in FINAL_STATUSES:
        return sync_answer(jobs.job_record(job, history=[]))
    with ext.hub().follow(job.id) as follow:
        return wait_and_answer(job.id, follow)


def wait_and_answer(job_id: str, follow: Follow):
    ext.session().close()  # hold no connection while the job runs
    final = follow.wait_final(ext.settings().sync_timeout_seconds)
    if final is None:
        raise ApiError(504, f"The job is still running; follow it at /jobs/{job_id}.")
    if "job" in final:  # the job's record came with its final event
        return sync_answer(final["job"])
    return sync_answer(jobs.job_record(ext.session().get(Job, job_id), history=[]))


def async_answer(job: Job):
    body = {"id": job.id, "status": job.status, "pipeline": job.pipeline,
            "model_id": job.model_id, "created_at": jobs.iso(job.created_at),
            "url": f"{request.host_url}jobs/{job.id}",
            "events_url": f"{request.host_url}jobs/{job.id}/events"}
    return body, 202, {"Location": f"/jobs/{job.id}"}


def sync_answer(record: dict):
    """A synchronous request's answer, from its job's record (jobs.job_record)."""
    status = record["status"]
    if status == JobStatus.SUCCEEDED:
        return jobs.render_of(record["pipeline"], record["result"], ext.media_links(request.host_url))
    if status == JobStatus.FAILED:
        raise ApiError(record["error_status"] or 500, record["error"] or "Job failed.")
    raise ApiError(503, f"The job was {status}.")
