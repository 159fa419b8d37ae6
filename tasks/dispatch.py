"""Sending a job to its queue: one way for the gateway, a retry and the controller."""

from tasks import names
from tasks.messages import JobMessage


def send_job(celery, job: JobMessage) -> None:
    # The task id is the job id and attempt: Flower shows each delivery, and a job's
    # attempts stay apart.
    celery.send_task(names.RUN_JOB, args=[job.model_dump()], queue=job.queue,
                     task_id=f"{job.job_id}.{job.attempt}", priority=job.priority,
                     argsrepr=f"[{job.pipeline} {job.model_id} attempt {job.attempt}]")
