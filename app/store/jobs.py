"""A job's life in the database: created queued, then moved by the workers' events.

Every transition is idempotent: an event for a job already final is ignored, so a job
re-run after a crash, or an event delivered twice, never changes an outcome twice."""

import bisect
import json
import time
import uuid
from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, bindparam, column, delete, func, insert, select,
                        update)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by, array_agg
from sqlalchemy.orm import joinedload

from app.store import ledger
from app.store.media import MediaLinks, MediaStore
from app.store.tables import Job, JobHistory, JobOutbox, WebhookDelivery
from tasks import control
from tasks.catalog import Catalog
from tasks.dispatch import outgoing
from tasks.messages import ANSWER, TEXT, InputLink, JobMessage, Output, WorkerEvent
from tasks.pipelines import PIPELINES
from tasks.pipelines.base import render_answer
from tasks.status import FINAL_STATUSES, REQUEUED, JobStatus


def now() -> datetime:
    return datetime.now(timezone.utc)


def from_unix(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def new_job(job_id: str, api_key_id: int, pipeline: str, model_id: str, params: dict,
            units: int, queue: str) -> Job:
    created = now()
    job = Job(id=job_id, api_key_id=api_key_id, pipeline=pipeline,
              model_id=model_id, params=params, billable_units=units, queue=queue,
              status=JobStatus.QUEUED, attempts=0, created_at=created)
    job.history.append(JobHistory(status=JobStatus.QUEUED, at=created, detail={"queue": queue}))
    return job


def job_message(job: Job, inputs: dict[str, str], deadline: float | None,
                time_limit: float, priority: int, sender: str | None,
                input_links: dict[str, InputLink] | None = None) -> JobMessage:
    """What the worker gets: `inputs` in base64, and links to the larger ones
    (app/store/inputs.py). `sender`: the address the gateway signs tickets with, for
    which the worker's operator writes its ticket params; None when it pays no one."""
    return JobMessage(job_id=job.id, pipeline=job.pipeline, model_id=job.model_id,
                      queue=job.queue, params=job.params, deadline=deadline,
                      time_limit=time_limit, enqueued_at=time.time(), priority=priority,
                      inputs=inputs, input_links=input_links or {}, sender=sender)


def insert_new(connection, job: Job, message: JobMessage, links: MediaLinks) -> None:
    """Writes a job new_job made, queued: its row, its first history row, its outbox row
    (the message, kept until the job is final, so that whatever happens between the
    commit and the publish, the controller can publish it) and the webhook delivery it
    owes, if any, in one statement. Intake's hot path: on a connection in autocommit
    (db.autocommit) the statement is its own transaction, one round trip, where under
    gevent each round trip to PostgreSQL costs about as much as building the statement.
    `job` stays out of any session."""
    connection.execute(*_new_statement(job, message, links))


def insert_many(connection, new: list[tuple[Job, JobMessage, MediaLinks]]) -> None:
    """insert_new for many jobs, in the connection's transaction: one executemany per
    statement, which psycopg sends in one pipeline (app/store/group_commit.py)."""
    by_statement: dict = {}
    for job, message, links in new:
        statement, params = _new_statement(job, message, links)
        by_statement.setdefault(statement, []).append(params)
    for statement, rows in by_statement.items():
        connection.execute(statement, rows)


def _new_statement(job: Job, message: JobMessage, links: MediaLinks) -> tuple:
    """The statement that writes a new job, and its parameters."""
    [queued] = job.history
    params = {**{f"job_{name}": _or_default(job, name) for name in _NEW_COLUMNS},
              "history_detail": queued.detail, "outbox_message": message.model_dump()}
    if (delivery := webhook_owed(job, job.status, links)) is None:
        return _INSERT_NEW, params
    return _INSERT_NEW_OWING, {
        **params, **{f"delivery_{name}": delivery[name] for name in _DELIVERY_COLUMNS}}


def delete_unqueued(session, job_id: str) -> None:
    """Takes back a job whose message could not be queued (its rows go with it)."""
    session.execute(delete(Job).where(Job.id == job_id))
    session.commit()


def kept_message(session, job_id: str) -> JobMessage | None:
    row = session.get(JobOutbox, job_id)
    return JobMessage.model_validate(row.message) if row is not None else None


def webhook_owed(job: Job, status: str, links: MediaLinks) -> dict | None:
    """The columns of the webhook delivery of `status`, when the job asked for this
    event: written in the transaction that records the state change, so that a crash
    after the commit loses none (app/webhooks.py delivers them)."""
    if not (job.webhook_url and status in (job.webhook_events or [])):
        return None
    return {"job_id": job.id, "api_key_id": job.api_key_id, "url": job.webhook_url,
            "event": status, "payload": {"event": status, "job": public_view(job, links, None)},
            "status": "pending", "attempts": 0, "next_attempt_at": now()}


def insert_deliveries(session, deliveries: list[dict]) -> None:
    if deliveries:
        session.execute(insert(WebhookDelivery.__table__), deliveries)


def enqueue(celery, execute, message: JobMessage) -> None:
    """Publishes a job's first attempt: its control record and its message, at once.
    `execute(ask)` sends the commands ask(pipe) adds (app/shared_pipeline.py)."""
    send = outgoing(celery, message)
    execute(lambda pipe: control.ask_init(pipe, message.job_id, message.deadline,
                                          message.time_limit, time.time(), send))


def _history(job: Job, status: str, at: datetime, detail: dict | None) -> None:
    """Adds a row to a job's history, kept in the order its record shows (by time, then
    as added)."""
    bisect.insort(job.history, JobHistory(job_id=job.id, status=status, at=at, detail=detail),
                  key=lambda entry: entry.at)


def apply_event(session, event: WorkerEvent, media: MediaStore,
                operator_id: int | None, catalog: Catalog | None = None) -> Job | None:
    """Applies one event the arbiter (tasks/control.py) accepted (apply_events)."""
    return apply_events(session, [(event, operator_id)], media, catalog)[0]


def apply_events(session, events: list[tuple[WorkerEvent, int | None]], media: MediaStore,
                 catalog: Catalog | None = None, on_change=None) -> list[Job | None]:
    """Applies events the arbiter accepted, in order, to the jobs as one SELECT locked
    and read them (in id order, so that two recorders cannot deadlock), and writes what
    changed in a few statements: this is the recorder's hot path, where the ORM's unit of
    work cost most of its time. For each event: the job when its state changed, else
    None (it was already final: a repeat). The jobs returned are the rows as this
    transaction leaves them, histories included, outside the session. `on_change(job)`
    runs after each change, while the job is as that event left it. A success owes its
    fee (priced from `catalog`) to its operator, in the same transaction
    (app/store/ledger.py)."""
    jobs = lock_jobs(session, [event.job_id for event, _ in events])
    changed = []
    for event, operator_id in events:
        job = _apply(session, jobs.get(event.job_id), event, media, operator_id, catalog)
        if job is not None and on_change is not None:
            on_change(job)
        changed.append(job)
    _write(session, list({job.id: job for job in changed if job is not None}.values()))
    return changed


# Core statements on the tables (no ORM entity in them: the ORM's statement path costs
# this hot path more than the query).
_JOBS, _HISTORY, _OUTBOX = Job.__table__, JobHistory.__table__, JobOutbox.__table__
_DELIVERIES = WebhookDelivery.__table__
# What intake writes of a new job's row (the rest is NULL or the table's default).
_NEW_COLUMNS = ("id", "api_key_id", "pipeline", "model_id", "params", "billable_units",
                "queue", "status", "attempts", "created_at", "priority", "deadline",
                "idempotency_key", "request_hash", "webhook_url", "webhook_events")
# What webhook_owed says of a delivery.
_DELIVERY_COLUMNS = ("job_id", "api_key_id", "url", "event", "payload", "status", "attempts",
                     "next_attempt_at")


def _typed(name: str, column):
    """A bind parameter of the column's type (a JSON column's None: SQL NULL)."""
    kind = JSONB(none_as_null=True) if isinstance(column.type, JSON) else column.type
    return bindparam(name, type_=kind)


def _or_default(job: Job, name: str):
    """The job's value, or the column's default where the job has none."""
    value, default = getattr(job, name), _JOBS.c[name].default
    return default.arg if value is None and default is not None else value


def _insert_new_statement(owing: bool = False):
    """The job's row, then its first history row and its outbox row made from it, and
    (`owing`) its webhook delivery, in one statement (the foreign keys are checked at its
    end)."""
    job = (insert(_JOBS).values({name: _typed(f"job_{name}", _JOBS.c[name])
                                 for name in _NEW_COLUMNS})
           .returning(_JOBS.c.id, _JOBS.c.status, _JOBS.c.created_at).cte("new_job"))
    history = (insert(_HISTORY).from_select(
        ["job_id", "status", "at", "detail"],
        select(job.c.id, job.c.status, job.c.created_at,
               _typed("history_detail", _HISTORY.c.detail))).cte("new_history"))
    statement = (insert(_OUTBOX).from_select(
        ["job_id", "message"], select(job.c.id, _typed("outbox_message", _OUTBOX.c.message)))
        .add_cte(history))
    if owing:
        delivery = insert(_DELIVERIES).values({
            name: _typed(f"delivery_{name}", _DELIVERIES.c[name]) for name in _DELIVERY_COLUMNS})
        statement = statement.add_cte(delivery.cte("new_delivery"))
    return statement


_INSERT_NEW, _INSERT_NEW_OWING = _insert_new_statement(), _insert_new_statement(owing=True)
# What an event may change of a job's row (_apply); the rest is the gateway's.
_CHANGING = ("status", "worker", "operator_id", "attempts", "started_at", "finished_at",
             "result", "billable_units", "error", "error_status", "timings")


def _write_statement():
    """A changed job's row, its new history rows (a JSON array, as many as the batch
    made) and, once it is final (nothing will publish or requeue it again), the end of
    its outbox row, in one statement: executed for many jobs, one round trip."""
    added = func.jsonb_to_recordset(bindparam("history", type_=JSONB)).table_valued(
        column("status", _HISTORY.c.status.type), column("at", _HISTORY.c.at.type),
        column("detail", JSONB)).render_derived(name="added", with_types=True)
    history = (insert(_HISTORY).from_select(
        ["job_id", "status", "at", "detail"],
        select(bindparam("job_id"), added.c.status, added.c.at, added.c.detail))
        .cte("new_history"))
    ended = (delete(_OUTBOX).where(_OUTBOX.c.job_id == bindparam("job_id"),
                                   bindparam("final", type_=Boolean))
             .cte("ended_outbox"))
    return (update(_JOBS).where(_JOBS.c.id == bindparam("job_id"))
            .values({name: _typed(name, _JOBS.c[name]) for name in _CHANGING})
            .add_cte(history).add_cte(ended))


_WRITE_JOB = _write_statement()


def _write(session, jobs: list[Job]) -> None:
    """The changed jobs' rows, their new history rows, and the end of the outbox rows of
    those now final."""
    if jobs:
        session.execute(_WRITE_JOB, [_written(job) for job in jobs])


def _written(job: Job) -> dict:
    added = [{"status": entry.status, "at": entry.at.isoformat(),
              **({"detail": entry.detail} if entry.detail is not None else {})}
             for entry in job.history if entry.id is None]
    return {"job_id": job.id, "history": added, "final": job.status in FINAL_STATUSES,
            **{name: getattr(job, name) for name in _CHANGING}}


def with_history(session, job_id: str) -> Job | None:
    """The job and its history rows, read in one query."""
    return session.scalars(select(Job).where(Job.id == job_id)
                           .options(joinedload(Job.history))).unique().first()


def _history_of(column: str):
    """An array of the job's history rows' `column`, in their record's order."""
    rows = _HISTORY.c
    return (select(array_agg(aggregate_order_by(rows[column], rows.at, rows.id)))
            .where(rows.job_id == _JOBS.c.id).scalar_subquery().label(f"history_{column}"))


_LOCK_JOBS = (select(_JOBS, _history_of("id"), _history_of("status"), _history_of("at"))
              .where(_JOBS.c.id.in_(bindparam("ids", expanding=True)))
              .order_by(_JOBS.c.id).with_for_update(of=_JOBS))


def lock_jobs(session, job_ids: list[str]) -> dict[str, Job]:
    """The jobs, locked until commit, read with their histories in one query, as Job
    objects outside the session (apply_events writes what it changes of them)."""
    found = {}
    for row in session.execute(_LOCK_JOBS, {"ids": sorted(set(job_ids))}).mappings():
        job = Job(**{column.key: row[column.key] for column in _JOBS.columns})
        job.history = [JobHistory(id=entry_id, job_id=job.id, status=status, at=at)
                       for entry_id, status, at in zip(row["history_id"] or [],
                                                       row["history_status"] or [],
                                                       row["history_at"] or [])]
        found[job.id] = job
    return found


def _apply(session, job: Job | None, event: WorkerEvent, media: MediaStore,
           operator_id: int | None, catalog: Catalog | None) -> Job | None:
    if job is None or job.status in FINAL_STATUSES:
        return None
    at = from_unix(event.at)
    job.worker = event.worker or job.worker
    job.operator_id = operator_id or job.operator_id
    job.attempts = max(job.attempts, event.attempt)
    if event.status == JobStatus.STARTED:
        _mark_started(job, event, at)
        return job
    if event.status == REQUEUED:
        job.status = JobStatus.QUEUED
        _history(job, REQUEUED, at, {"worker": event.worker, "error": event.error})
        return job
    if job.started_at is None and event.started_at is not None:
        # The recorder may take a job's final event before its started one.
        _mark_started(job, event, from_unix(event.started_at))
    _finish(job, event, at, media)
    if job.status == JobStatus.SUCCEEDED:
        ledger.record_debt(session, job, event.payee, event.payment, catalog)
    return job


def _mark_started(job: Job, event: WorkerEvent, at: datetime) -> None:
    job.status = JobStatus.STARTED
    job.started_at = at
    _history(job, JobStatus.STARTED, at, {"worker": event.worker, "attempt": event.attempt})


def _finish(job: Job, event: WorkerEvent, at: datetime, media: MediaStore) -> None:
    if event.status == JobStatus.SUCCEEDED:
        job.result = _result(job.id, event.outputs, media)
        if event.units is not None:
            # The worker's own count (llm: tokens processed) is believed only up to the
            # bound the gateway set at intake: an operator cannot bill more.
            job.billable_units = max(0, min(job.billable_units, event.units))
    job.status = event.status
    job.error = event.error
    job.error_status = event.error_status if event.status == JobStatus.FAILED else None
    job.finished_at = at
    job.timings = event.timings or None
    _history(job, event.status, at, {"worker": event.worker, "error": event.error})


def _result(job_id: str, outputs: list[Output], media: MediaStore) -> dict:
    """A JSON answer or a text output (image-to-text) is the answer itself; media are
    stored, and linked."""
    answers = [output for output in outputs if output.content_type == ANSWER]
    if answers:
        return {"body": _without_nul(json.loads(answers[0].raw()))}
    texts = [output.raw().decode() for output in outputs if output.content_type == TEXT]
    if texts:
        return {"text": "\n".join(texts)}
    images = []
    for index, output in enumerate(outputs):
        name = media.name_for(job_id, index, output.content_type)
        media.put(name, output.raw())
        images.append({"media": name, "seed": output.seed, "nsfw": output.nsfw})
    return {"images": images}


def _without_nul(value):
    """PostgreSQL's JSON cannot hold U+0000, which a model may well write."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_nul(item) for key, item in value.items()}
    return value


def finish_elsewhere(job: Job, where: str, answer: dict) -> None:
    """A job another gateway ran for us: its answer is the result, URLs and all."""
    at = now()
    job.status = JobStatus.SUCCEEDED
    job.ran_on = where
    job.result = {"body": answer}
    job.started_at = job.finished_at = at
    _history(job, JobStatus.SUCCEEDED, at, {"ran_on": where})


def render_of(pipeline: str, result: dict | None, links: MediaLinks) -> dict | None:
    """The route's answer for a job's result, as its pipeline's spec renders it, media
    linked for this host."""
    if result is None:
        return None
    spec = PIPELINES.get(pipeline)  # None: a plugin no longer installed here
    render = spec.request.render if spec is not None else render_answer
    return render(result, links.url)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_record(job: Job, history: list[JobHistory] | None = None) -> dict:
    """What a job's answers and public view are made of, as JSON, its result not rendered
    (media links depend on the host asked). A job's final event carries it, so that its
    followers answer without reading the job again. `history`: the rows to show instead
    of job.history ([]: a synchronous answer, which shows none, loads none)."""
    return {
        "id": job.id,
        "status": job.status,
        "pipeline": job.pipeline,
        "model_id": job.model_id,
        "worker": job.worker,
        "attempts": job.attempts,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "billable_units": job.billable_units,
        "result": job.result,
        "error": job.error,
        "error_status": job.error_status,
        "timings": job.timings,
        "priority": job.priority,
        "ran_on": job.ran_on,
        "history": [{"status": e.status, "at": iso(e.at)}
                    for e in (job.history if history is None else history)],
    }


def public_view(job: Job, links: MediaLinks, live_progress: dict | None) -> dict:
    return view_of(job_record(job), links, live_progress)


def view_of(record: dict, links: MediaLinks, live_progress: dict | None) -> dict:
    """GET /jobs/<id>'s answer, from a job's record."""
    if record["status"] == JobStatus.SUCCEEDED:
        progress = 1.0
    elif live_progress:
        progress = live_progress["progress"]
    else:
        progress = 0.0
    return {
        "id": record["id"],
        "status": record["status"],
        "pipeline": record["pipeline"],
        "model_id": record["model_id"],
        "progress": progress,
        "worker": record["worker"],
        "attempts": record["attempts"],
        "created_at": record["created_at"],
        "started_at": record["started_at"],
        "finished_at": record["finished_at"],
        "billable_units": record["billable_units"],
        "result": render_of(record["pipeline"], record["result"], links),
        "error": record["error"],
        "timings": record["timings"],
        "priority": record["priority"],
        "ran_on": record["ran_on"],
        "history": record["history"],
    }
