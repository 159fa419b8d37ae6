"""Which job events go to a job's webhook, and what they carry."""

from app.jobs import public_view
from app.media import MediaLinks
from app.models import Job
from tasks import webhooks


def notify(celery, job: Job, event: str, links: MediaLinks) -> None:
    """Queues a delivery when the job asked for this event."""
    if job.webhook_url and event in (job.webhook_events or []):
        payload = {"event": event, "job": public_view(job, links, None)}
        webhooks.send(celery, job.webhook_url, payload)
