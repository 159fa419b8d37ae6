"""What must hold after any fault: checked against the database, the broker and disk."""

import os

from sqlalchemy import select

from app.store.tables import Job, JobHistory
from tasks import control
from tasks.status import FINAL_STATUSES


def assert_jobs_final_exactly_once(sessions, redis, job_ids) -> None:
    """Every accepted job reached one final state, recorded once, and its control record
    agrees: nothing will run it again."""
    with sessions() as session:
        for job_id in job_ids:
            job = session.get(Job, job_id)
            assert job.status in FINAL_STATUSES, (job_id, job.status)
            finals = session.scalars(select(JobHistory.status).where(
                JobHistory.job_id == job_id, JobHistory.status.in_(FINAL_STATUSES))).all()
            assert finals == [job.status], (job_id, finals)
            assert control.state(redis, job_id) == job.status
            assert job_id not in control.running(redis)


def assert_no_orphan_media(sessions, media_dir) -> None:
    """Every result file belongs to a job's result (a retried recording rewrites the same
    names, it never leaves extra files)."""
    with sessions() as session:
        referenced = {image["media"] for result in session.scalars(
            select(Job.result).where(Job.result.isnot(None)))
            for image in result.get("images", []) if "media" in image}
    on_disk = {name for name in os.listdir(media_dir) if not name.startswith(".")}
    assert on_disk <= referenced, on_disk - referenced
