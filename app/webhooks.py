"""Webhooks: which job events go to a job's webhook and what they carry, and their
delivery (the recorder's task): signed with HMAC-SHA256, retried with exponential
backoff.

The receiver checks `X-Webhook-Signature: sha256=<hex>` over `<timestamp>.<body>` with
the shared secret, and rejects a timestamp (X-Webhook-Timestamp) too far from its clock.
"""

import hashlib
import hmac
import json
import logging
import time

import requests

from app.store.jobs import public_view
from app.store.media import MediaLinks
from app.store.tables import Job
from tasks.names import DELIVER_WEBHOOK, WEBHOOK_QUEUE

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
MAX_RETRIES = 8


class DeliveryFailed(Exception):
    pass


def notify(celery, job: Job, event: str, links: MediaLinks) -> None:
    """Queues a delivery when the job asked for this event."""
    if job.webhook_url and event in (job.webhook_events or []):
        payload = {"event": event, "job": public_view(job, links, None)}
        celery.send_task(DELIVER_WEBHOOK, args=[job.webhook_url, payload], queue=WEBHOOK_QUEUE)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def post(url: str, payload: dict, secret: str) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Webhook-Timestamp": timestamp,
               "X-Webhook-Signature": signature(secret, timestamp, body),
               "X-Webhook-Event": payload["event"]}
    response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS,
                             allow_redirects=False)
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"{url} answered {response.status_code}")


def register(celery, secret: str) -> None:
    """The delivery task, on the recorder's Celery app."""

    @celery.task(name=DELIVER_WEBHOOK, autoretry_for=(requests.RequestException, DeliveryFailed),
                 retry_backoff=1, retry_backoff_max=600, retry_jitter=False,
                 max_retries=MAX_RETRIES)
    def deliver(url: str, payload: dict) -> None:
        post(url, payload, secret)
