"""What must hold after any fault: checked against the database, the broker and disk.
tests/conftest.py checks them after every test marked `fault`, over the jobs that test
made."""

import os
import time
from datetime import datetime

from sqlalchemy import select

from app.store.tables import Job, JobHistory
from devstack.stack import wait_for
from tasks import control
from tasks.status import FINAL_STATUSES


def jobs_since(sessions, since: datetime) -> list[str]:
    """The jobs made at or after `since` that ran here (not on a fallback gateway)."""
    with sessions() as session:
        return list(session.scalars(select(Job.id).where(Job.created_at >= since,
                                                         Job.ran_on.is_(None))))


def assert_jobs_final_exactly_once(sessions, redis, job_ids, timeout: float = 0) -> None:
    """Every accepted job reached one final state, recorded once, and its control record
    agrees: nothing will run it again. Waits up to `timeout` for the jobs to be final."""
    def unfinished():
        with sessions() as session:
            return [j for j in job_ids if session.get(Job, j).status not in FINAL_STATUSES]

    if timeout:
        wait_for(lambda: not unfinished(), timeout=timeout, interval=0.5,
                 what="every job to be final")
    with sessions() as session:
        for job_id in job_ids:
            job = session.get(Job, job_id)
            assert job.status in FINAL_STATUSES, (job_id, job.status)
            finals = session.scalars(select(JobHistory.status).where(
                JobHistory.job_id == job_id, JobHistory.status.in_(FINAL_STATUSES))).all()
            assert finals == [job.status], (job_id, finals)
            assert control.state(redis, job_id) == job.status
            assert job_id not in control.running(redis)


def assert_no_orphan_media(sessions, media_dir, since: float = 0.0) -> None:
    """Every result file (written since `since`, a unix time) belongs to a job's result:
    a retried recording rewrites the same names, and an interrupted write leaves no
    temporary file (.tmp-*) behind."""
    with sessions() as session:
        referenced = {image["media"] for result in session.scalars(
            select(Job.result).where(Job.result.isnot(None)))
            for image in result.get("images", []) if "media" in image}
    on_disk = {entry.name for entry in os.scandir(media_dir)
               if entry.is_file() and entry.stat().st_mtime >= since}
    assert on_disk <= referenced, on_disk - referenced


def now() -> float:
    return time.time()
