"""New jobs written in groups (app/store/group_commit.py), on the suite's PostgreSQL: the
jobs that arrive while a group is written make the next group, one transaction, and each
request returns once its own job is committed, or with its own error."""

import threading
import time
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app.api.auth import hash_key
from app.store import jobs
from app.store.group_commit import GroupCommit
from app.store.tables import ApiKey, Job, JobHistory, JobOutbox
from support import make_key, wait_for

CONCURRENT = 6


@pytest.fixture
def key_id(sessions):
    key = make_key(sessions, "group-commit")
    with sessions() as session:
        return session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key)))


def new_job(key_id: int, idempotency_key: str | None = None):
    job = jobs.new_job(str(uuid.uuid4()), key_id, "echo", "echo", {"prompt": "grouped"}, 1,
                       "echo:echo")
    job.idempotency_key = idempotency_key
    return job, jobs.job_message(job, {}, None, 60.0, 3, None)


def insert_together(sessions, made: list) -> tuple[list, list]:
    """Inserts `made` from threads of their own while the first job's group is held
    until all the others wait for the next: (each group's size, each insert's error)."""
    links = None  # no webhook is owed: no result link is made
    sizes, errors, first_held = [], [None] * len(made), threading.Event()
    writer = None

    def on_group(size: int) -> None:
        sizes.append(size)
        if len(sizes) == 1:  # the first job's group: hold it until the rest are pending
            wait_for(lambda: writer.grouped.pending() == len(made) - 1, timeout=30)

    writer = GroupCommit(sessions, on_group=on_group)

    def insert(i: int) -> None:
        try:
            writer.insert(made[i][0], made[i][1], links)
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(len(made))]
    threads[0].start()
    wait_for(lambda: sizes, timeout=30)  # the first is written alone, and held
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sizes, errors


def committed(sessions, job_ids: list[str]) -> list[int]:
    with sessions() as session:
        return [session.scalar(select(func.count()).select_from(table).where(
            table.job_id.in_(job_ids) if table is not Job else Job.id.in_(job_ids)))
            for table in (Job, JobHistory, JobOutbox)]


def transactions_of(sessions, job_ids: list[str]) -> int:
    """How many transactions wrote these jobs' rows (their rows' xmin)."""
    with sessions() as session:
        return session.scalar(text("SELECT count(DISTINCT xmin::text) FROM jobs "
                                   "WHERE id = ANY(:ids)"), {"ids": job_ids})


def test_jobs_that_arrive_while_a_group_is_written_are_committed_together(sessions, key_id):
    made = [new_job(key_id) for _ in range(CONCURRENT)]
    sizes, errors = insert_together(sessions, made)
    assert sizes == [1, CONCURRENT - 1]
    assert errors == [None] * CONCURRENT
    assert committed(sessions, [job.id for job, _ in made]) == [CONCURRENT] * 3
    assert transactions_of(sessions, [job.id for job, _ in made[1:]]) == 1


def test_a_job_whose_idempotency_key_is_taken_fails_alone(sessions, key_id):
    """One job of a group conflicts: the group's transaction is rolled back and each job
    written alone, so that only that request gets the IntegrityError (its twin's)."""
    taken = f"taken-{time.time()}"
    GroupCommit(sessions).insert(*new_job(key_id, taken), None)
    made = [new_job(key_id) for _ in range(CONCURRENT - 1)] + [new_job(key_id, taken)]
    sizes, errors = insert_together(sessions, made)
    assert sizes == [1, CONCURRENT - 1]
    assert errors[:-1] == [None] * (CONCURRENT - 1)
    assert isinstance(errors[-1], IntegrityError)
    assert committed(sessions, [job.id for job, _ in made]) == [CONCURRENT - 1] * 3
