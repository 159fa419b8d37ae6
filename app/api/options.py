"""What a client may ask of a job besides its pipeline's fields, read from headers:

- Prefer: respond-async       answer 202 at once instead of the result
- X-Deadline-Seconds: N       start within N s or be aborted (and admission checks it)
- X-Time-Limit-Seconds: N     run at most N s (default and maximum: MAX_JOB_SECONDS)
- X-Priority: high|normal|low  order within the queue
- Idempotency-Key: K          the same key and request return the same job
- X-Webhook-Url: URL          POST signed events to URL
- X-Webhook-Events: a,b       which events (default: the final ones)
"""

import time
from dataclasses import dataclass
from app import destinations
from app.api.errors import ApiError
from tasks.status import JobStatus

PRIORITIES = {"high": 0, "normal": 3, "low": 6}  # kombu's Redis priority steps: 0 first
WEBHOOK_EVENTS = frozenset(JobStatus)
FINAL_EVENTS = [status.value for status in JobStatus if status.final]


@dataclass(frozen=True)
class JobOptions:
    respond_async: bool
    deadline_seconds: float | None
    time_limit: float
    priority: str
    idempotency_key: str | None
    webhook_url: str | None
    webhook_events: list[str] | None

    @property
    def deadline(self) -> float | None:
        return time.time() + self.deadline_seconds if self.deadline_seconds else None

    @classmethod
    def from_headers(cls, headers, max_job_seconds: float, webhook_allowed=()) -> "JobOptions":
        webhook_url = webhook(headers.get("X-Webhook-Url"), webhook_allowed)
        return cls(
            respond_async="respond-async" in headers.get("Prefer", ""),
            deadline_seconds=seconds(headers, "X-Deadline-Seconds", 24 * 3600),
            time_limit=seconds(headers, "X-Time-Limit-Seconds", max_job_seconds)
            or float(max_job_seconds),
            priority=priority(headers.get("X-Priority", "normal")),
            idempotency_key=idempotency_key(headers.get("Idempotency-Key")),
            webhook_url=webhook_url,
            webhook_events=events(headers.get("X-Webhook-Events")) if webhook_url else None,
        )


def seconds(headers, name: str, longest: float) -> float | None:
    asked = headers.get(name)
    if asked is None:
        return None
    try:
        value = float(asked)
    except ValueError:
        raise ApiError(400, f"{name} must be a number of seconds.")
    if not 0 < value <= longest:
        raise ApiError(400, f"{name} must be more than 0 and at most {longest:g}.")
    return value


def priority(value: str) -> str:
    if value not in PRIORITIES:
        raise ApiError(400, f"X-Priority must be one of {', '.join(PRIORITIES)}.")
    return value


def idempotency_key(value: str | None) -> str | None:
    if value is not None and not 0 < len(value) <= 200:
        raise ApiError(400, "Idempotency-Key must have 1 to 200 characters.")
    return value


def webhook(url: str | None, allowed) -> str | None:
    """The webhook's URL, refused at once when it names no public address (the
    delivery checks what its name resolves to)."""
    if url is None:
        return None
    try:
        destinations.check_literal(url, allowed)
    except destinations.ForbiddenDestination as exc:
        raise ApiError(400, f"X-Webhook-Url {exc}.")
    return url


def events(value: str | None) -> list[str]:
    if value is None:
        return FINAL_EVENTS
    asked = [e.strip() for e in value.split(",") if e.strip()]
    unknown = sorted(set(asked) - WEBHOOK_EVENTS)
    if unknown or not asked:
        raise ApiError(400, f"X-Webhook-Events: unknown events {unknown}; "
                            f"choose from {', '.join(sorted(WEBHOOK_EVENTS))}.")
    return asked
