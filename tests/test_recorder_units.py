"""A worker's own count of a job's units (llm: tokens) is believed only up to the bound
the gateway set at intake."""

import time
import uuid

import pytest

from app.store import jobs
from app.store.media import MediaStore
from app.store.tables import ApiKey
from tasks.messages import Output, WorkerEvent


@pytest.fixture
def job_row(sessions, api_key):
    from sqlalchemy import select

    from app.api.auth import hash_key

    def make(bound: int) -> str:
        with sessions() as session:
            key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(api_key)))
            job = jobs.new_job(str(uuid.uuid4()), key.id, "llm", "tiny/llama", {}, bound,
                               "llm:tiny/llama")
            session.add(job)
            session.commit()
            return job.id

    return make


@pytest.mark.parametrize("reported, billed", [(30, 30), (70, 50), (None, 50), (-5, 0)])
def test_reported_units_are_cut_to_the_bound(sessions, job_row, tmp_path, reported, billed):
    job_id = job_row(50)
    event = WorkerEvent(job_id=job_id, status="succeeded", at=time.time(), worker="w",
                        started_at=time.time(), units=reported,
                        outputs=[Output.from_answer({"id": str(uuid.uuid4())}, 0)])
    with sessions() as session:
        job = jobs.apply_event(session, event, MediaStore(tmp_path, "secret"), None)
        session.commit()
        assert job.billable_units == billed
