"""The gateway's settle task: pays an operator for a job that succeeded, and only then.

The recorder sends it (queue `settle`) once a succeeded job is committed, with the job id,
the worker that ran it and the operator's ticket params. It prices the job from the models
file (billable units x price_per_unit / pixels_per_unit, in wei), issues tickets covering
the fee less the operator's credit, signs them with the gateway's key, records the
settlement and its tickets in one transaction, then hands them to the operator's
`payments:<address>` queue. Settling a job twice issues nothing new: the settlement row is
made once per job, and its tickets are sent until they are marked sent.
"""

from __future__ import annotations

import logging
from fractions import Fraction

from kombu.exceptions import OperationalError as BrokerUnavailable
from sqlalchemy.exc import IntegrityError, OperationalError

from app.settings import gateway_key
from app.store import db, ledger
from app.store.tables import Job
from chain.balance import stage_update
from chain.recipient import TicketParams
from chain.sender import TicketSender, TooManyTickets
from tasks import names
from tasks.catalog import Catalog, ModelEntry
from tasks.celery_app import method_task
from tasks.messages import WorkerEvent
from tasks.status import JobStatus

log = logging.getLogger(__name__)
# Worth retrying: the database or broker was away, or two settlements raced for a nonce.
RETRYABLE = (OperationalError, IntegrityError, BrokerUnavailable)


def request(celery, event: WorkerEvent) -> None:
    """Asks for a job's settlement (the recorder calls this after its commit)."""
    celery.send_task(names.SETTLE, args=[event.job_id, event.worker, event.payment],
                     queue=names.SETTLE_QUEUE)


def job_fee(entry: ModelEntry | None, units: int) -> Fraction:
    """What a job costs, in wei; nothing for a model no longer in the models file."""
    if entry is None:
        return Fraction(0)
    return Fraction(units * entry.price_per_unit, entry.pixels_per_unit)


class Settler:
    def __init__(self, sessions, catalog: Catalog | None, private_key: str | None, celery):
        self.sessions = sessions
        self.catalog = catalog
        self.private_key = private_key
        self.celery = celery

    def settle(self, job_id: str, worker: str, raw_params: dict) -> str:
        params = self._params(job_id, raw_params)
        if params is None or self.private_key is None:
            return "unpaid"
        with db.transaction(self.sessions) as session:
            job = session.get(Job, job_id, with_for_update=True)
            # Only the worker whose result was recorded is paid: a job run twice after a
            # crash has one outcome, and one payee.
            if job is None or job.status != JobStatus.SUCCEEDED or job.worker != worker:
                log.info("job %s not settled: not a success recorded from %s", job_id, worker)
                return "ignored"
            settlement = session.get(ledger.Settlement, job_id)
            if settlement is None:
                try:
                    settlement = self._issue(session, job, params)
                except TooManyTickets as exc:
                    log.error("job %s not paid: %s (the operator's ticket EV is too small)", job_id, exc)
                    return "refused"
            payment = ledger.unsent_payment(settlement)
        if payment is None:
            return "settled"
        # Sent after the commit, marked after the send: a crash in between sends the same
        # tickets again, which the redeemer refuses as replayed; none is ever lost.
        self.celery.send_task(names.PAYMENT, args=[job_id, payment.to_dict()],
                              queue=names.payments_queue(payment.params.recipient))
        with db.transaction(self.sessions) as session:
            ledger.mark_sent(session, job_id)
        log.info("job %s paid with %d tickets (EV %.4g wei)", job_id, len(payment.tickets),
                 float(payment.ev))
        return "sent"

    def _params(self, job_id: str, raw: dict) -> TicketParams | None:
        try:
            params = TicketParams.from_dict(raw)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("job %s not paid: its ticket params do not parse: %s", job_id, exc)
            return None
        if params.ev <= 0:
            log.warning("job %s not paid: ticket params with no value", job_id)
            return None
        return params

    def _issue(self, session, job: Job, params: TicketParams) -> ledger.Settlement:
        entry = self.catalog.find(job.pipeline, job.model_id) if self.catalog else None
        fee = job_fee(entry, job.billable_units)
        sender = TicketSender(self.private_key, ledger.PgNonces(session))
        credit = ledger.lock_credit(session, sender.address, params.recipient)
        count, credit_after = stage_update(fee, Fraction(credit.credit), params.ev)
        payment = sender.issue(params, count)
        return ledger.record_settlement(session, job.id, fee, payment, credit, credit_after)

    def receipt(self, job_id: str, results: list[dict], recipient: str | None) -> int:
        """An operator's verdicts on its tickets of a job (accepted, rejected and why,
        winning); the tickets of other recipients are not its to speak of."""
        if recipient is None:
            return 0
        with db.transaction(self.sessions) as session:
            return ledger.apply_receipt(session, job_id, results, recipient)


def register(celery, sessions, catalog: Catalog | None) -> Settler:
    """The settle and receipt tasks, on the recorder's Celery app."""
    key = gateway_key()
    if key is None:
        log.warning("no GATEWAY_PRIVATE_KEY: jobs are recorded but no operator is paid")
    settler = Settler(sessions, catalog, key, celery)
    options = dict(autoretry_for=RETRYABLE, retry_backoff=True, max_retries=10)
    # Once per job, its outcome ("settled", tickets issued) is kept for whoever asks.
    method_task(celery, settler.settle, name=names.SETTLE, ignore_result=False, **options)
    return settler
