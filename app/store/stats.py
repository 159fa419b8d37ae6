"""What the network looks like now, read from PostgreSQL and Redis: the numbers behind
the gateway's /metrics collector and the admin dashboard. Read-only, and each read is
one query (or one Redis pipeline)."""

import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from app.store.tables import Job
from tasks import queues
from tasks.catalog import Catalog
from tasks.celery_app import queues_for
from tasks.status import FINAL_STATUSES, JobStatus

log = logging.getLogger(__name__)
FAILED_STATUSES = (JobStatus.FAILED, JobStatus.ABORTED)


def job_counts(session) -> list[tuple[str, str, str, int]]:
    """(pipeline, model_id, status, jobs) for every combination that has jobs."""
    rows = session.execute(select(Job.pipeline, Job.model_id, Job.status, func.count())
                           .group_by(Job.pipeline, Job.model_id, Job.status))
    return [tuple(row) for row in rows]


def jobs_per_minute(session, minutes: int = 30, now: datetime | None = None) -> dict:
    """Jobs that ended (any final status) in each of the last `minutes` minutes, by
    pipeline: {"minutes": [iso, ...], "pipelines": {pipeline: [count per minute]}}."""
    now = now or datetime.now(timezone.utc)
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    minute = func.date_trunc("minute", Job.finished_at)
    rows = session.execute(
        select(Job.pipeline, minute, func.count())
        .where(Job.finished_at >= first, Job.status.in_(FINAL_STATUSES))
        .group_by(Job.pipeline, minute))
    slots = [first + timedelta(minutes=i) for i in range(minutes)]
    index = {slot: i for i, slot in enumerate(slots)}
    series: dict[str, list[int]] = {}
    for pipeline, at, count in rows:
        position = index.get(at.astimezone(timezone.utc))
        if position is not None:
            series.setdefault(pipeline, [0] * minutes)[position] += count
    return {"minutes": [s.isoformat() for s in slots], "pipelines": dict(sorted(series.items()))}


def recent_failures(session, limit: int = 10) -> list[dict]:
    jobs = session.scalars(select(Job).where(Job.status.in_(FAILED_STATUSES))
                           .order_by(Job.finished_at.desc().nulls_last()).limit(limit))
    return [{"id": j.id, "pipeline": j.pipeline, "model_id": j.model_id, "status": j.status,
             "worker": j.worker, "error": j.error,
             "finished_at": j.finished_at.isoformat() if j.finished_at else None}
            for j in jobs]


def queue_depths(redis, catalog: Catalog | None) -> dict[str, int]:
    """Waiting messages in every declared queue (all priorities), consumed or not."""
    return {q.name: queues.depth(redis, q.name) for q in queues_for(catalog)}


# -- payments: the ledger's tables (app/store/ledger.py), zeros while they do not exist --

PAYMENT_TABLES = ("tickets", "debts", "redemptions")
NO_PAYMENTS = {"tickets_issued": 0, "tickets_winning": 0, "tickets_redeemed": 0,
               "owed_wei": 0, "owed_unpaid_wei": 0, "ev_issued_wei": 0, "redeemed_wei": 0}

# One statement. owed_unpaid_wei reads only unpaid debts, through their partial index.
PAYMENTS_SQL = text("""
SELECT (SELECT count(*) FROM tickets WHERE status <> 'void') AS tickets_issued,
       (SELECT count(*) FROM tickets WHERE winning) AS tickets_winning,
       (SELECT count(*) FROM redemptions) AS tickets_redeemed,
       (SELECT coalesce(sum(fee), 0) FROM debts) AS owed_wei,
       (SELECT coalesce(sum(fee), 0) FROM debts
         WHERE status <> 'paid' AND owed_at < now() - make_interval(secs => :unpaid_after))
         AS owed_unpaid_wei,
       (SELECT coalesce(sum(ev), 0) FROM tickets WHERE status <> 'void') AS ev_issued_wei,
       (SELECT coalesce(sum(face_value), 0) FROM redemptions) AS redeemed_wei
""")


def payments(sessions, unpaid_after_seconds: float) -> dict:
    """Tickets issued (not voided), winning (as the operator or the chain says) and redeemed
    on chain; wei owed (the fees of the succeeded jobs of paid workers), owed and unpaid for
    longer than `unpaid_after_seconds`, carried by the live tickets (their EV), and
    redeemed. Zeros until the payment tables exist."""
    try:
        with sessions() as session:
            present = session.execute(
                select(*[func.to_regclass(t) for t in PAYMENT_TABLES])).one()
            if any(found is None for found in present):
                return dict(NO_PAYMENTS)
            row = session.execute(PAYMENTS_SQL, {"unpaid_after": unpaid_after_seconds}).one()._asdict()
    except SQLAlchemyError:
        log.warning("payment totals unavailable", exc_info=True)
        return dict(NO_PAYMENTS)
    return {key: int(value) for key, value in row.items()}
