"""The gateway's recorder: reads what operators' workers say (each operator's events
stream, signed: tasks/envelope.py), believes only what checks out, has the arbiter
(tasks/control.py) decide, and records the decision through the journal (PostgreSQL,
followers, webhooks). Workers never touch the database.

    python -m app.recorder

A message is dropped, logged and counted when it is unsigned or signed by an unknown or
revoked operator, when it does not parse, or when it is about an attempt another worker
claimed. A message that fails for any other reason (the database or the media store
away, a bug) stays pending in its stream and is tried again with backoff; one that still
fails after MAX_TRIES is parked (names.PARKED_EVENTS, GET /admin/events/parked, and the
genai_recorder_parked_total counter), never silently dropped. Several recorders share
the work (a consumer group); one that dies leaves its pending messages to the others.

RECORDER_METRICS_PORT (0: off) serves its Prometheus metrics on RECORDER_METRICS_ADDR.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

from prometheus_client import Counter
from pydantic import ValidationError
from redis.exceptions import ResponseError

from app import settle
from app.dispatcher import Dispatcher
from app.journal import Journal
from app.operators import OperatorKeys
from app.settings import Settings
from app.store import db
from app.store.media import MediaLinks, MediaStore
from tasks import control, envelope, live, logs, metrics_server, names
from tasks.catalog import Catalog
from tasks.celery_app import make_celery
from tasks.connections import redis_client
from tasks.control import Claimant
from tasks.messages import FreshParams, PaymentReceipt, SlotStarted, WorkerEvent
from tasks.status import FINAL_STATUSES, PROGRESS, REQUEUED, JobStatus

log = logging.getLogger(__name__)
GROUP = "recorder"
BATCH = 100
BLOCK_MS = 500
MAX_TRIES = 12  # about five minutes of backoff
BACKOFF_CAP_SECONDS = 30.0
ORPHANED_MS = 60_000  # a message pending this long with a recorder that died is taken over

REFUSED = Counter("genai_operator_messages_refused", "Operators' messages the recorder "
                  "did not believe or did not apply, by reason", ["operator", "reason"])
PARKED = Counter("genai_recorder_parked", "Messages the recorder could not apply and kept "
                 "aside after retrying them")


class Refused(Exception):
    """A message not to believe, or about an attempt that is not its sender's."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Change:
    """A job event that checked out: the arbiter's call that decides it, then the
    journal records it."""

    event: WorkerEvent
    operator_id: int
    call: control.Call


def operator_of_stream(stream: str) -> int:
    return int(stream.rsplit("-", 1)[1])


class Recorder:
    def __init__(self, settings: Settings, celery, redis=None, sessions=None):
        self.sessions = sessions or db.make_sessionmaker(settings.database_url)
        self.redis = redis or redis_client(settings.redis_url)
        self.media = MediaStore(settings.media_dir, settings.media_secret)
        links = MediaLinks(settings.public_base_url, self.media, settings.media_url_ttl_seconds)
        # The catalog prices what a success owes its operator (app/store/ledger.py).
        self.journal = Journal(self.sessions, self.redis, self.media, links, load_catalog(settings))
        self.dispatcher = Dispatcher(self.sessions, self.redis, celery, self.journal)
        self.celery = celery
        self.keys = OperatorKeys(self.sessions, settings.operator_keys_secret.encode())
        self.receipts = settle.Receipts(self.sessions)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._grouped: set[str] = set()
        self._retries: dict[tuple[str, str], tuple[int, float]] = {}  # -> (tries, due)
        self._orphans_checked = 0.0
        self.linger_ms = settings.recorder_linger_ms
        self.batch = BATCH  # messages read at most in one go

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if not self.step():
                    stop.wait(BLOCK_MS / 1000)
            except Exception:  # Redis away for a moment: nothing is lost, read again
                log.warning("recorder pass failed; trying again", exc_info=True)
                stop.wait(1.0)

    def step(self) -> bool:
        """One pass: orphans now and then, retries that are due, then what is new
        (waiting up to BLOCK_MS for it, and a job's start up to RECORDER_LINGER_MS more
        for its end). False when there is no stream to read yet."""
        streams = self._streams()
        if time.monotonic() - self._orphans_checked > ORPHANED_MS / 4000:
            self._take_orphans(streams)
            self._orphans_checked = time.monotonic()
        self._retry_due()
        if not streams:
            return False
        entries = self._read(streams, BLOCK_MS)
        arbitrated, done = self._arbitrate_all(entries)
        if self.linger_ms and len(entries) < self.batch and self._awaiting_final(arbitrated):
            more, more_done = self._arbitrate_all(self._read(streams, self.linger_ms))
            arbitrated, done = arbitrated + more, done + more_done
        self._record(arbitrated, done)
        return True

    def _read(self, streams: list[str], block_ms: int) -> list[tuple[str, str, dict]]:
        read = self.redis.xreadgroup(GROUP, self.consumer, {s: ">" for s in streams},
                                     count=self.batch, block=block_ms)
        return [(stream, entry_id, fields) for stream, entries in self._entries(read)
                for entry_id, fields in entries]

    @staticmethod
    def _awaiting_final(arbitrated: list) -> bool:
        """A job's start without its end: a short job's end comes a moment later, and
        then one transaction records both (the end does not wait behind the start's)."""
        events = [change.event for _, _, _, change, _ in arbitrated]
        ended = {event.job_id for event in events if event.status in FINAL_STATUSES}
        return any(event.status == JobStatus.STARTED and event.job_id not in ended
                   for event in events)

    def _streams(self) -> list[str]:
        streams = [names.operator_events(operator_id) for operator_id in self.keys.active()]
        for stream in streams:
            if stream not in self._grouped:
                try:
                    self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
                except ResponseError as exc:  # BUSYGROUP: made before
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._grouped.add(stream)
        return streams

    @staticmethod
    def _entries(read):
        """XREADGROUP's answer as (stream, [(id, fields)])."""
        for stream, entries in read or []:
            yield _text(stream), [(_text(i), f) for i, f in entries if f is not None]

    def _take_orphans(self, streams: list[str]) -> None:
        """Messages a dead recorder left pending: this one takes them."""
        for stream in streams:
            _, claimed, *_ = self.redis.xautoclaim(stream, GROUP, self.consumer,
                                                   min_idle_time=ORPHANED_MS, count=self.batch)
            self._apply([(stream, _text(entry_id), fields) for entry_id, fields in claimed
                         if fields is not None])

    def _retry_due(self) -> None:
        now = time.monotonic()
        for (stream, entry_id), (_, due) in list(self._retries.items()):
            if due > now:
                continue
            found = self.redis.xrange(stream, entry_id, entry_id)
            if not found:
                self._retries.pop((stream, entry_id), None)
                continue
            self._attempt(stream, entry_id, found[0][1])

    def _apply(self, entries: list[tuple[str, str, dict]]) -> None:
        self._record(*self._arbitrate_all(entries))

    def _arbitrate_all(self, entries: list[tuple[str, str, dict]]) -> tuple[list, list]:
        """Checks each message on its own: (the job events that await the arbiter and
        the journal, the messages done with). The starts among them are claimed here,
        together in one round trip, before any message that reads claims (a progress
        event, a requeue, a slot's restart: a streamed answer's chunks are believed only
        from its claimant) and at the end."""
        arbitrated, done, starts = [], [], []

        def claim_starts() -> None:
            verdicts = control.run_all(self.redis, [arbitrated[i][3].call for i in starts])
            for i, verdict in zip(starts, verdicts):
                arbitrated[i] = (*arbitrated[i][:4], verdict)
            starts.clear()

        for stream, entry_id, fields in entries:
            try:
                change = self._arbitrate(stream, fields, claim_starts)
            except Exception as exc:
                if self._failed(stream, entry_id, fields, exc):
                    continue
                change = None
            if change is None:
                done.append((stream, entry_id, fields, None))
                continue
            if change.event.status == JobStatus.STARTED:
                starts.append(len(arbitrated))
            arbitrated.append((stream, entry_id, fields, change, None))
        claim_starts()
        return arbitrated, done

    def _record(self, arbitrated: list, done: list) -> None:
        """New messages, the fast way: the arbiter's calls of all but starts are made in
        one round trip, and the job events among them are recorded in one transaction.
        When that fails, each is tried on its own (_attempt), so that one bad message
        holds up no other."""
        later = iter(control.run_all(self.redis, [change.call for *_, change, verdict
                                                  in arbitrated if verdict is None]))
        batch = []
        for stream, entry_id, fields, change, verdict in arbitrated:
            verdict = verdict if verdict is not None else next(later)
            try:
                self._check(verdict)
                batch.append((stream, entry_id, fields, change))
            except Exception as exc:
                if not self._failed(stream, entry_id, fields, exc):
                    done.append((stream, entry_id, fields, change))
        if batch:
            try:
                self.journal.record_many([(c.event, c.operator_id) for *_, c in batch])
                done.extend(batch)
            except Exception:
                log.warning("a batch of %d events failed; recording them one by one",
                            len(batch), exc_info=True)
                for stream, entry_id, fields, _ in batch:
                    self._attempt(stream, entry_id, fields)
        self._done([(stream, entry_id) for stream, entry_id, *_ in done])

    def _attempt(self, stream: str, entry_id: str, fields: dict) -> None:
        """One message, again or on its own: done, or kept pending for its next try."""
        try:
            self.handle(stream, fields)
        except Exception as exc:
            if self._failed(stream, entry_id, fields, exc):
                return
        self._done([(stream, entry_id)])

    def _failed(self, stream: str, entry_id: str, fields: dict, exc: Exception) -> bool:
        """True when the message stays pending, to be tried again; False when it is
        done with (refused, or parked after its last try)."""
        if isinstance(exc, Refused):
            operator = str(operator_of_stream(stream))
            REFUSED.labels(operator, exc.reason).inc()
            self.redis.hincrby(names.OPERATOR_REFUSALS, f"{operator}:{exc.reason}", 1)
            log.warning("operator %s: message %s refused: %s", operator, entry_id, exc)
            return False
        tries = self._retries.get((stream, entry_id), (0, 0.0))[0] + 1
        if tries < MAX_TRIES:
            delay = min(BACKOFF_CAP_SECONDS, 0.5 * 2 ** (tries - 1))
            self._retries[(stream, entry_id)] = (tries, time.monotonic() + delay)
            log.warning("message %s of %s failed (try %d), again in %.1fs: %s",
                        entry_id, stream, tries, delay, exc)
            return True
        self._park(stream, entry_id, fields, exc)
        return False

    def _done(self, entries: list[tuple[str, str]]) -> None:
        """Acknowledged and deleted: applied, refused or parked."""
        if not entries:
            return
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in entries:
            self._retries.pop((stream, entry_id), None)
            by_stream.setdefault(stream, []).append(entry_id)
        with self.redis.pipeline() as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
            pipe.execute()

    def _park(self, stream: str, entry_id: str, fields: dict, exc: Exception) -> None:
        log.error("message %s of %s parked after %d tries: %r", entry_id, stream, MAX_TRIES,
                  exc)
        PARKED.inc()
        self.redis.xadd(names.PARKED_EVENTS, {**fields, "stream": stream, "entry": entry_id,
                                              "error": repr(exc)[:2000], "at": str(time.time())})

    # -- one message ---------------------------------------------------------------------

    def handle(self, stream: str, fields: dict) -> None:
        """Applies one message of an operator's stream; raises Refused when it is not to
        be believed or applied, anything else when it should be tried again."""
        change = self._arbitrate(stream, fields)
        if change is not None:
            self._check(change.call.on(self.redis))
            self.journal.record(change.event, change.operator_id)

    def _arbitrate(self, stream: str, fields: dict,
                   claims_first: Callable[[], None] = lambda: None) -> "Change | None":
        """Checks one message and applies all of it but a job's new state, which it
        returns for the arbiter to decide and the journal to record; raises like
        handle. `claims_first()` makes the claims of starts read before this message,
        when it reads claims."""
        operator_id = operator_of_stream(stream)
        try:
            message = envelope.Envelope.opened(fields, self.keys.key_for)
        except envelope.BadEnvelope as exc:
            raise Refused("unauthenticated", str(exc)) from None
        if message.operator_id != operator_id:
            raise Refused("wrong_stream", f"signed by operator {message.operator_id}")
        if message.kind == envelope.JOB:
            return self._job_event(operator_id, self._parse(WorkerEvent, message), claims_first)
        if message.kind == envelope.SLOT:
            claims_first()
            self._slot_started(operator_id, self._parse(SlotStarted, message))
        elif message.kind == envelope.RECEIPT:
            receipt = self._parse(PaymentReceipt, message)
            self.receipts.receipt(receipt.job_id, receipt.results, self.keys.address_of(operator_id))
        elif message.kind == envelope.PARAMS:
            fresh = self._parse(FreshParams, message)
            self.receipts.fresh_params(fresh.job_id, fresh.params, self.keys.address_of(operator_id))
        else:
            raise Refused("unknown_kind", message.kind)
        return None

    @staticmethod
    def _parse(model, message: envelope.Envelope):
        try:
            parsed = model.model_validate_json(message.body)
            return parsed.with_blobs(message.blobs) if isinstance(parsed, WorkerEvent) else parsed
        except (ValidationError, ValueError) as exc:
            raise Refused("malformed", str(exc)[:300]) from None

    def _job_event(self, operator_id: int, event: WorkerEvent,
                   claims_first: Callable[[], None]) -> "Change | None":
        claimant = Claimant(operator_id, event.worker, event.boot)
        if event.status == PROGRESS:
            claims_first()
            self._progress(claimant, event)
        elif event.status == JobStatus.STARTED:
            return Change(event, operator_id,
                          control.claim(event.job_id, event.attempt, claimant, time.time()))
        elif event.status == REQUEUED:
            claims_first()
            if not self.dispatcher.requeue(event.job_id, claimant, event.attempt,
                                           event.error or "requeued", asked_by_claimant=True):
                raise Refused("not_claimant", f"requeue of job {event.job_id}")
        elif event.status in FINAL_STATUSES:
            event = self._usable(event)  # a success with its debt: the settler pays
            return Change(event, operator_id,
                          control.finish(event.job_id, event.attempt, claimant,
                                         JobStatus(event.status), event.error, time.time()))
        else:
            raise Refused("malformed", f"status {event.status!r}")
        return None

    @staticmethod
    def _check(verdict: str | Exception) -> None:
        if isinstance(verdict, Exception):  # Redis refused the script: try again
            raise verdict
        if verdict == control.OK:
            return
        if verdict == control.CLAIMED:
            raise Refused("not_claimant")
        if verdict in (control.STALE, control.UNKNOWN):
            raise Refused(verdict)
        raise Refused("already_final", verdict)

    def _usable(self, event: WorkerEvent) -> WorkerEvent:
        """A success whose outputs this gateway cannot store or answer with is the
        worker's failure, not a message to retry forever."""
        if event.status == JobStatus.SUCCEEDED and not all(
                self.media.accepts(output.content_type) for output in event.outputs):
            return event.model_copy(update={"status": JobStatus.FAILED, "outputs": [],
                                            "payment": None,
                                            "error": "The worker's result could not be used."})
        return event

    def _progress(self, claimant: Claimant, event: WorkerEvent) -> None:
        found = control.read(self.redis, event.job_id)
        if (found is None or found.state != JobStatus.STARTED or found.claimant != claimant
                or found.attempt != event.attempt):
            return  # late, or not the claimant's: nothing to tell followers
        live.record_progress(self.redis, event.job_id, event.step or 0, event.total or 0,
                             event.chunks)

    def _slot_started(self, operator_id: int, started: SlotStarted) -> None:
        """A worker process that restarted under its name: what its predecessor claimed
        is lost, now, rather than when the heartbeat would have said so."""
        for job_id, (claimant, attempt) in control.running(self.redis).items():
            if (claimant.operator_id == operator_id and claimant.worker == started.worker
                    and claimant.boot != started.boot):
                self.dispatcher.lost(job_id, claimant, attempt,
                                     f"worker {started.worker} restarted")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def load_catalog(settings: Settings) -> Catalog | None:
    return Catalog.load(settings.models_file) if os.path.exists(settings.models_file) else None


def make_recorder_celery(settings: Settings):
    """The recorder's Celery app, which dispatches jobs (it runs no task of its own: the
    settler, not the recorder, pays)."""
    return make_celery(settings.redis_url, load_catalog(settings), settings.max_job_seconds)


def main() -> None:
    settings = Settings.from_env()
    logs.setup("recorder", settings.recorder_log_level)
    metrics_server.serve(settings.recorder_metrics_port, settings.recorder_metrics_addr)
    if not settings.operator_keys_secret:
        raise SystemExit("set OPERATOR_KEYS_SECRET: operators' messages are checked with it")
    recorder = Recorder(settings, make_recorder_celery(settings))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    recorder.run(stop)


if __name__ == "__main__":
    main()
