"""A job's status: the one vocabulary of the gateway, the workers, the control records,
the live events and the database."""

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ABORTED = "aborted"  # its deadline passed before it could start

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED,
                            JobStatus.ABORTED})
# Not statuses. The history entry of an attempt that was lost (its worker died, or it ran
# out of memory) and queued again as the next attempt:
REQUEUED = "requeued"
# A running job's step, reported by its worker and published to its followers:
PROGRESS = "progress"
