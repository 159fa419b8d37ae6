"""The gateway's tables: API keys, jobs and each job's status history (the payment
ledger's are in app/store/ledger.py, on the same Base)."""

from datetime import datetime

from sqlalchemy import (
    JSON, BigInteger, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Text,
    UniqueConstraint, func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tasks.status import JobStatus

JsonColumn = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; never the key
    prefix: Mapped[str] = mapped_column(String(16))  # shown to admins to tell keys apart
    role: Mapped[str] = mapped_column(String(16), default="user")  # user | admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # None: the gateway's defaults (RATE_LIMIT_PER_MINUTE; no daily quota).
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    daily_job_quota: Mapped[int | None] = mapped_column(Integer)
    # The key's webhook signing secret is derived from the gateway's secret, the key's id
    # and this generation (nothing secret at rest); rotating it bumps the generation.
    webhook_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class Operator(Base):
    """A GPU operator the gateway trusts to take jobs: its workers reach Redis as its own
    user and sign what they say with its key (app/operators.py)."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    address: Mapped[str] = mapped_column(String(42))  # who its tickets pay
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # One job per (key, Idempotency-Key): a retried request finds the first one.
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_jobs_idempotency"),
        # Counting a key's jobs in flight, for its fair share.
        Index("ix_jobs_key_status", "api_key_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict] = mapped_column(JsonColumn)
    billable_units: Mapped[int] = mapped_column(BigInteger)
    queue: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), index=True, default=JobStatus.QUEUED)
    worker: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # {"images": [{"media": name, "seed": int, "nsfw": bool}]}: media names, not URLs,
    # so the answer can be rendered for whichever host the client reached.
    result: Mapped[dict | None] = mapped_column(JsonColumn)
    error: Mapped[str | None] = mapped_column(Text)
    # A failure the request caused (the model refused it): the status a sync client gets.
    error_status: Mapped[int | None] = mapped_column(SmallInteger)
    timings: Mapped[dict | None] = mapped_column(JsonColumn)
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_events: Mapped[list | None] = mapped_column(JsonColumn)
    # Where it ran when not on our workers (the fallback gateway's URL).
    ran_on: Mapped[str | None] = mapped_column(Text)
    # The operator whose worker's outcome was recorded.
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))

    history: Mapped[list["JobHistory"]] = relationship(
        back_populates="job", order_by="JobHistory.at", cascade="all, delete-orphan")


class JobOutbox(Base):
    """A job's message (its small uploads in it, links to the others), written in the
    transaction that makes the job and kept until the job is final: whatever happens
    between the commit and the publish, the controller can publish it, and requeue a
    lost attempt from it."""

    __tablename__ = "job_outbox"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"),
                                        primary_key=True)
    message: Mapped[dict] = mapped_column(JsonColumn)  # tasks.messages.JobMessage


class WebhookDelivery(Base):
    """One event of a job to POST to its webhook: written with the state change it
    reports, delivered (and retried) by the webhooks process."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JsonColumn)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class JobHistory(Base):
    """One row per status change (or REQUEUED), with when it happened and who said so."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[dict | None] = mapped_column(JsonColumn)

    job: Mapped[Job] = relationship(back_populates="history")
