"""While a job runs, a thread of the slot looks after it in the background: every
WATCH_SECONDS, one read of the job's control record (canceled? superseded by another
attempt or another worker? decided by the gateway, e.g. past its time limit?) and, when
the job moved on, one progress event to the gateway. The step callback itself then
touches no network: it records the step and stops the job if the watch said so."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from tasks import control
from tasks.control import Claimant
from tasks.messages import WorkerEvent
from tasks.status import PROGRESS, JobStatus

log = logging.getLogger(__name__)
WATCH_SECONDS = 0.25
# A chunk of a streamed answer cuts the wait short; the chunks that come meanwhile go in
# the same event.
CHUNK_SECONDS = 0.05


@dataclass
class WatchedJob:
    job_id: str
    attempt: int
    claimant: Claimant
    step: int = 0
    total: int = 0
    reported: tuple[int, int] = (0, 0)
    chunks: list[dict] = field(default_factory=list)  # of a streamed answer, not yet sent
    # (status, error) once the job must stop; status None: its outcome is no longer ours.
    stop: tuple[str | None, str] | None = None
    started: float = field(default_factory=time.monotonic)

    def judge(self, found: control.Control | None) -> None:
        """What the control record says of this run."""
        if found is None or self.stop is not None:
            return
        if found.attempt != self.attempt:
            self.stop = (None, "superseded by a later attempt")
        elif found.state == JobStatus.CANCELED:
            self.stop = (None, "The job was canceled.")
        elif found.state == JobStatus.STARTED and found.claimant != self.claimant:
            self.stop = (None, "claimed by another worker")
        elif found.state not in (JobStatus.QUEUED, JobStatus.STARTED):
            self.stop = (None, f"the gateway decided it {found.state}")


class JobWatch:
    def __init__(self, redis, report, interval: float = WATCH_SECONDS):
        self.redis = redis
        self.report = report  # (WorkerEvent) -> None: to the gateway
        self.interval = interval
        self._job: WatchedJob | None = None
        self._reporting = threading.Lock()  # the watch thread and the job's end both report
        self._wake = threading.Event()
        self._chunked = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-watch", daemon=True)
        self._thread.start()

    def begin(self, job_id: str, attempt: int, claimant: Claimant) -> WatchedJob:
        self._job = WatchedJob(job_id, attempt, claimant)
        self._wake.set()
        return self._job

    def end(self) -> None:
        self._job = None

    def _run(self) -> None:
        while True:
            job = self._job
            if job is None:
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                self._look(job)
            except Exception:  # Redis away for a moment: the job runs on, look again
                log.warning("watch of job %s failed", job.job_id, exc_info=True)
            if self._chunked.wait(self.interval):
                time.sleep(CHUNK_SECONDS)
                self._chunked.clear()

    def add_chunk(self, job: WatchedJob, chunk: dict) -> None:
        """A piece of a streamed answer (llm), reported with the next progress, soon."""
        with self._reporting:
            job.chunks.append(chunk)
        self._chunked.set()

    def _look(self, job: WatchedJob) -> None:
        job.judge(control.read(self.redis, job.job_id))
        if job.stop is None and self._job is job:
            self.report_progress(job)

    def report_progress(self, job: WatchedJob) -> None:
        """Reports the job's step, when it moved since last reported."""
        with self._reporting:
            moved = (job.step, job.total)
            chunks, job.chunks = job.chunks, []
            if moved == job.reported and not chunks:
                return
            job.reported = moved
        self.report(WorkerEvent(job_id=job.job_id, status=PROGRESS, at=time.time(),
                                worker=job.claimant.worker, boot=job.claimant.boot,
                                attempt=job.attempt, step=moved[0], total=moved[1],
                                chunks=chunks))
