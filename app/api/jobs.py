"""Following a job: GET /jobs/<id>."""

from flask import Blueprint, request

from app import db, extensions as ext, jobs
from app.auth import authenticate
from app.errors import ApiError
from app.models import Job
from tasks.live import read_progress

bp = Blueprint("jobs", __name__)


def owned_job(job_id: str) -> Job:
    """The job, if the caller's key made it (or the caller is an admin); 404 otherwise,
    so one key cannot learn that another key's job exists."""
    key = authenticate()
    job = db.session().get(Job, job_id) if len(job_id) <= 36 else None
    if job is None or (job.api_key_id != key.id and key.role != "admin"):
        raise ApiError(404, "Job not found.")
    return job


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    job = owned_job(job_id)
    progress = read_progress(ext.redis(), job.id) if job.status == "started" else None
    return jobs.public_view(job, request.host_url, progress)
