"""Webhook deliveries: a process of its own that POSTs the deliveries jobs owe (rows the
journal writes with each state change, app/store/tables.py WebhookDelivery), so a slow
or hostile receiver holds up nothing but its own delivery.

    python -m app.webhooks

Each attempt goes to an address checked public (app/destinations.py), follows no
redirect, has a total deadline (WEBHOOK_TIMEOUT_SECONDS, however slowly the receiver
drips its answer) and reads at most WEBHOOK_MAX_RESPONSE_BYTES of the answer; a failed
one is tried again with exponential backoff, WEBHOOK_MAX_ATTEMPTS times. A delivery
claimed by a process that died is taken again when its lease runs out: deliveries are
at least once.

Each API key has its own signing secret (derived from WEBHOOK_SECRET, the key's id and
its generation: shown once at the key's creation, and rotatable), so one customer cannot
sign events that another's receiver would believe. The receiver checks
`X-Webhook-Signature: sha256=<hex>` over `<timestamp>.<body>`, and rejects a timestamp
(X-Webhook-Timestamp) too far from its clock."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import signal
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import select

from app import destinations
from app.settings import Settings
from app.store import db
from app.store.jobs import now
from app.store.tables import ApiKey, WebhookDelivery
from tasks import logs, metrics_server

log = logging.getLogger(__name__)
SECRET_DOMAIN = b"genai/webhook-secret/v1/"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
BATCH = 64

DELIVERIES = Counter("genai_webhook_deliveries", "Webhook delivery attempts, by outcome",
                     ["outcome"])


class DeliveryFailed(Exception):
    pass


def signing_secret(gateway_secret: str, api_key_id: int, generation: int) -> str:
    mac = hmac.new(gateway_secret.encode(),
                   SECRET_DOMAIN + f"{api_key_id}/{generation}".encode(), hashlib.sha256)
    return "whsec_" + mac.hexdigest()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to now."""

    def __init__(self, destination: destinations.Destination, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.address = destination.address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, destination: destinations.Destination, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout,
                         context=ssl.create_default_context())
        self.address = destination.address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(destination: destinations.Destination, body: bytes, headers: dict, deadline: float,
         max_bytes: int) -> int:
    """POSTs within `deadline` seconds in all; returns the status. The connection is cut
    at the deadline, however the receiver drips."""
    connection_class = _PinnedHTTPS if destination.scheme == "https" else _PinnedHTTP
    connection = connection_class(destination, timeout=deadline)
    cut = threading.Event()

    def cut_off():
        cut.set()
        if connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(deadline, cut_off)
    watchdog.start()
    try:
        connection.request("POST", destination.path, body=body,
                           headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        response.read(max_bytes)  # the rest is never read
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        if cut.is_set():
            raise DeliveryFailed(f"no answer within {deadline:g}s") from None
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        watchdog.cancel()
        connection.close()
    if cut.is_set():
        raise DeliveryFailed(f"no answer within {deadline:g}s")
    return status


@dataclass(frozen=True)
class Claimed:
    id: int
    api_key_id: int
    url: str
    event: str
    payload: dict
    attempts: int
    secret: str


class WebhookSender:
    def __init__(self, settings: Settings, sessions=None):
        self.settings = settings
        self.sessions = sessions or db.make_sessionmaker(settings.database_url)
        self.allowed = destinations.parse_allowed(settings.webhook_allow_private)
        self.pool = ThreadPoolExecutor(settings.webhook_concurrency, "webhook")
        self.free = threading.Semaphore(settings.webhook_concurrency)
        self.per_key: dict[int, int] = {}  # deliveries in flight, by API key
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                claimed = self.claim()
            except Exception:  # the database away: try again shortly
                log.warning("could not claim webhook deliveries", exc_info=True)
                claimed = []
            for delivery in claimed:
                self.pool.submit(self._deliver_and_free, delivery)
            stop.wait(0.05 if claimed else 0.25)
        self.pool.shutdown(wait=True)

    def claim(self) -> list[Claimed]:
        """Takes the due deliveries this process has threads for, with a lease: one
        that dies with them gives them back when the lease runs out."""
        wanted = 0
        while wanted < BATCH and self.free.acquire(blocking=False):
            wanted += 1
        if not wanted:
            return []
        claimed = []
        try:
            claimed = self._claim(wanted)
        finally:  # the threads it did not get work for (all of them, when it failed)
            for _ in range(wanted - len(claimed)):
                self.free.release()
        return claimed

    def _claim(self, wanted: int) -> list[Claimed]:
        lease = timedelta(seconds=self.settings.webhook_timeout_seconds * 2 + 30)
        with db.transaction(self.sessions) as session:
            rows = session.execute(
                select(WebhookDelivery, ApiKey.webhook_generation)
                .join(ApiKey, ApiKey.id == WebhookDelivery.api_key_id)
                .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now())
                .order_by(WebhookDelivery.next_attempt_at).limit(BATCH)
                .with_for_update(skip_locked=True, of=WebhookDelivery)).all()
            claimed = []
            for delivery, generation in rows:
                if len(claimed) == wanted or not self._take_key_slot(delivery.api_key_id):
                    continue  # left for later: its key has its share in flight
                delivery.attempts += 1
                delivery.next_attempt_at = now() + lease
                claimed.append(Claimed(delivery.id, delivery.api_key_id, delivery.url,
                                       delivery.event,
                                       delivery.payload, delivery.attempts, signing_secret(
                                           self.settings.webhook_secret,
                                           delivery.api_key_id, generation)))
        return claimed

    def _take_key_slot(self, api_key_id: int) -> bool:
        with self._lock:
            if self.per_key.get(api_key_id, 0) >= self.settings.webhook_per_key_concurrency:
                return False
            self.per_key[api_key_id] = self.per_key.get(api_key_id, 0) + 1
            return True

    def _deliver_and_free(self, delivery: Claimed) -> None:
        try:
            self.deliver(delivery)
        except Exception:
            log.exception("webhook delivery %d", delivery.id)
        finally:
            with self._lock:
                self.per_key[delivery.api_key_id] -= 1
            self.free.release()

    def deliver(self, delivery: Claimed) -> None:
        error = None
        try:
            destination = destinations.resolve(delivery.url, self.allowed)
            body = json.dumps(delivery.payload, separators=(",", ":")).encode()
            timestamp = str(int(time.time()))
            status = post(destination, body, {
                "Host": destination.host, "Content-Type": "application/json",
                "User-Agent": "genai-network-webhooks", "X-Webhook-Timestamp": timestamp,
                "X-Webhook-Signature": signature(delivery.secret, timestamp, body),
                "X-Webhook-Event": delivery.event},
                self.settings.webhook_timeout_seconds, self.settings.webhook_max_response_bytes)
            if not 200 <= status < 300:
                error = f"answered {status}"
        except (DeliveryFailed, destinations.ForbiddenDestination) as exc:
            error = str(exc)
        self._settle(delivery, error)

    def _settle(self, delivery: Claimed, error: str | None) -> None:
        with db.transaction(self.sessions) as session:
            row = session.get(WebhookDelivery, delivery.id)
            if error is None:
                row.status, row.last_error = DELIVERED, None
                DELIVERIES.labels("delivered").inc()
                return
            row.last_error = error[:2000]
            if delivery.attempts >= self.settings.webhook_max_attempts:
                row.status = FAILED
                DELIVERIES.labels("failed").inc()
                log.warning("webhook %d to %s failed for good: %s", row.id, row.url, error)
                return
            backoff = min(600.0, self.settings.webhook_backoff_seconds * 2 ** (delivery.attempts - 1))
            row.next_attempt_at = now() + timedelta(seconds=backoff)
            DELIVERIES.labels("retried").inc()
            log.info("webhook %d to %s failed (%s); again in %.0fs", row.id, row.url, error,
                     backoff)


def main() -> None:
    settings = Settings.from_env()
    logs.setup("webhooks", settings.webhooks_log_level)
    metrics_server.serve(settings.webhooks_metrics_port, settings.recorder_metrics_addr)
    if not settings.webhook_secret:
        raise SystemExit("set WEBHOOK_SECRET: each key's signing secret is derived from it")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    WebhookSender(settings).run(stop)


if __name__ == "__main__":
    main()
