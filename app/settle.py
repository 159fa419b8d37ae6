"""Paying what succeeded jobs owe their operators, from the debts committed in PostgreSQL
(app/store/ledger.py) and never from a message that could be lost.

The settler (app/settler.py runs it) takes one due debt at a time, locked with SKIP LOCKED
so any number of settlers share the work, and in that debt's transaction:

- owed: when the operator's credit covers the fee, the debt is paid with no ticket. Else
  it needs params: the worker's, or fresh ones its redeemer made on request. Params are
  checked against the gateway's bounds (chain/bounds.py) and its own cached view of the
  chain; refused ones are logged and counted by reason, and fresh ones asked for (looked
  at when the debt's backoff is over, so an operator who keeps sending params the gateway
  refuses is asked less and less often). With valid params, tickets covering the fee less
  the credit are signed and recorded.
- small debts are paid together: a ticket's EV is bounded by TICKET_MAX_EV_FEE_MULTIPLE
  times all the operator is owed and not yet paid for, not by one job's fee. While that is
  too little for one of its tickets, a debt waits with its params ("deferred"), neither
  refused nor asking again; the settlement that reaches it issues the ticket, and the
  credit it leaves pays the other debts, woken at once, with no ticket of their own.
- issued: tickets the operator has not answered are sent again, with a backoff capped at
  SETTLE_RETRY_MAX_SECONDS and no ceiling on the tries (the redeemer answers a copy as it
  answered the first). Tickets it lastingly refused (their params expired on the way, say)
  are voided once the chain can no longer redeem them, at the watcher's confirmed depth, and
  their EV is issued again against fresh params. A ticket the operator took is never
  re-issued, so no debt is paid twice.

Messages (payments, requests for params) go out after the commit; a crash in between sends
them on the next attempt. The operator's answers come back signed, on its own events
stream, to the recorder, which only commits them (Receipts, below).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from kombu.exceptions import OperationalError as BrokerUnavailable
from sqlalchemy.exc import IntegrityError

from app.store import db, ledger
from chain.balance import stage_update
from chain.bounds import Refusal, SenderView, TicketBounds, check
from chain.payment import Payment
from chain.recipient import TicketParams
from chain.sender import TicketSender, TooManyTickets
from tasks import logs, names

log = logging.getLogger(__name__)
TOO_MANY_TICKETS = "too_many_tickets"


@dataclass(frozen=True)
class Policy:
    bounds: TicketBounds
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0


@dataclass
class Outcome:
    """What one attempt at a debt did, and what to send once it is committed."""

    what: str
    payments: list[Payment]
    ask_params: bool = False


class Settler:
    def __init__(self, sessions, private_key: str, celery, view: Callable[[], SenderView | None],
                 watcher_cursor: str, policy: Policy):
        self.sessions = sessions
        self.private_key = private_key
        self.address = TicketSender(private_key).address
        self.celery = celery
        self.view = view  # the gateway's cached view of the chain; None when too old
        self.watcher_cursor = watcher_cursor
        self.policy = policy

    # ---- the loop's body ----

    def settle_due(self, limit: int = 1000) -> dict[str, int]:
        """Attempts every due debt (at most `limit`); returns what happened, counted."""
        counts: dict[str, int] = {}
        for _ in range(limit):
            what = self.settle_next()
            if what is None:
                break
            counts[what] = counts.get(what, 0) + 1
        return counts

    def settle_next(self, job_id: str | None = None) -> str | None:
        """One due debt (or this job's, due or not), attempted; None when there is none."""
        try:
            with db.transaction(self.sessions) as session:
                debt = ledger.next_due(session, ledger.now(), job_id)
                if debt is None:
                    return None
                job_id, payee = debt.job_id, debt.payee
                logs.bind_job(job_id)  # this attempt's log lines carry its job
                outcome = self._attempt(session, debt)
            self._send(job_id, payee, outcome)
        except IntegrityError:  # two settlers picked the same nonces: the next try picks fresh ones
            log.warning("a settlement raced another; trying again")
            return "raced"
        finally:
            logs.bind_job(None)
        return outcome.what

    def _attempt(self, session, debt: ledger.Debt) -> Outcome:
        view = self.view()
        if debt.status == ledger.ISSUED:
            outcome = self._follow(session, debt, view)
            if outcome is not None:
                return outcome
        return self._pay(session, debt, view)

    # ---- tickets out: follow them up ----

    def _follow(self, session, debt: ledger.Debt, view: SenderView | None) -> Outcome | None:
        """Sends unanswered tickets again and voids lastingly refused ones the chain can no
        longer redeem. None when the debt is to be paid afresh (`_pay`)."""
        tickets = ledger.live_tickets(session, debt.job_id)
        refused = [t for t in tickets if t.status == ledger.REJECTED]
        voidable = self._voidable(session, refused, view)
        if voidable:
            credit = ledger.lock_credit(session, self.address, debt.payee)
            ev = ledger.void(session, voidable, credit)
            log.warning("job %s: %d tickets (EV %s wei) refused by the operator (%s) and past redeeming:"
                        " voided, to be issued again", debt.job_id, len(voidable), ev,
                        ",".join(sorted({t.rejection or "?" for t in voidable})))
            tickets = [t for t in tickets if t.status != ledger.VOID]
        unanswered = [t for t in tickets if t.status in ledger.UNANSWERED]
        if unanswered:
            self._schedule(debt)
            return Outcome("resent", ledger.payments_for(session, unanswered))
        if any(t.status == ledger.REJECTED for t in tickets):
            self._schedule(debt)  # wait until they can be voided
            return Outcome("waiting", [])
        debt.status = ledger.OWED  # every live ticket taken: _pay sees whether the credit covers it
        return None

    def _voidable(self, session, refused, view: SenderView | None) -> list:
        """Refused tickets no chain redemption can pay any more, as far as the watcher has
        read at its confirmed depth (which has recorded no redemption of them)."""
        if not refused or view is None:
            return []
        watched = ledger.cursor(session, self.watcher_cursor)
        if watched is None:
            return []
        rounds = ledger.creation_rounds(session, (t.recipient_rand_hash for t in refused))
        return [t for t in refused if watched >= view.redeemable_until(rounds[t.recipient_rand_hash])]

    # ---- paying ----

    def _pay(self, session, debt: ledger.Debt, view: SenderView | None) -> Outcome:
        credit = ledger.lock_credit(session, self.address, debt.payee)
        fee = Fraction(0) if debt.charged else Fraction(debt.fee)
        if fee <= Fraction(credit.credit):
            # The credit covers it (or covered it, and nothing was taken back): no ticket.
            _, after = stage_update(fee, Fraction(credit.credit), 1)
            credit.credit, debt.charged = ledger.to_amount(after), True
            ledger.mark_paid(debt)
            return Outcome("paid", [])
        if view is None:
            self._schedule(debt)  # bounds cannot be checked without the chain's view: later
            return Outcome("no_view", [])
        params = self._params_at_hand(session, debt, view)
        if params is Refusal.EV_OVER_FEE:
            self._schedule(debt)  # its params kept: the operator's next jobs may make it worth one
            return Outcome("deferred", [])
        if params is None:
            self._schedule(debt)
            return Outcome("asked_params", [], ask_params=True)
        count, after = stage_update(fee, Fraction(credit.credit), params.ev)
        try:
            payment = TicketSender(self.private_key, ledger.PgNonces(session)).issue(params, count)
        except TooManyTickets as exc:  # the params' EV is far too small for the fee
            self._refuse(session, debt, TOO_MANY_TICKETS, str(exc))
            self._schedule(debt)
            return Outcome("asked_params", [], ask_params=True)
        ledger.record_tickets(session, debt, payment)
        credit.credit, debt.charged = ledger.to_amount(after), True
        debt.status, debt.params, debt.refusal = ledger.ISSUED, None, None
        self._schedule(debt, reset=True)
        if after > 0:
            ledger.wake_owed(session, debt.payee, debt.job_id)  # the credit pays them now
        log.info("job %s: %d tickets issued to %s (EV %.4g wei)", debt.job_id, count, debt.payee,
                 float(payment.ev))
        return Outcome("issued", [payment])

    def _params_at_hand(self, session, debt: ledger.Debt, view: SenderView) -> TicketParams | Refusal | None:
        """The debt's params when they are within bounds for a ticket paying for all the
        operator is owed (this debt included); EV_OVER_FEE when their only fault is an EV
        too high for that, and they are kept; else None (refused ones dropped, the refusal
        logged and counted)."""
        if debt.params is None:
            return None
        try:
            params = TicketParams.from_dict(debt.params)
        except (KeyError, TypeError, ValueError) as exc:
            self._refuse(session, debt, Refusal.MALFORMED.value, str(exc))
            return None
        owed = Fraction(debt.fee) + ledger.owed_uncharged(session, debt.payee, debt.job_id)
        refusal = check(params, payee=debt.payee, fee=owed, view=view, bounds=self.policy.bounds)
        if refusal is Refusal.EV_OVER_FEE:
            log.info("job %s: %s is owed %.4g wei in all, too little for one ticket of EV %.4g wei:"
                     " it waits for more", debt.job_id, debt.payee, float(owed), float(params.ev))
            return refusal
        if refusal is not None:
            self._refuse(session, debt, refusal.value, f"face value {params.face_value}, "
                         f"win prob {params.win_prob}, expires at block {params.expiration_block}")
            return None
        return params

    def _refuse(self, session, debt: ledger.Debt, reason: str, detail: str) -> None:
        log.warning("job %s: ticket params from %s refused: %s (%s)", debt.job_id, debt.payee, reason, detail)
        ledger.count_refusal(session, debt.payee, reason)
        debt.params, debt.refusal = None, reason

    def _schedule(self, debt: ledger.Debt, reset: bool = False) -> None:
        if reset:
            debt.attempts = 0
        ledger.schedule(debt, self.policy.retry_base_seconds, self.policy.retry_max_seconds)

    # ---- after the commit ----

    def _send(self, job_id: str, payee: str, outcome: Outcome) -> None:
        """Hands the outcome's messages to the broker; a broker that is away costs nothing
        but time: the debt's next attempt sends them again."""
        try:
            for payment in outcome.payments:
                self.celery.send_task(names.PAYMENT, args=[job_id, payment.to_dict()],
                                      queue=names.payments_queue(payment.params.recipient))
            if outcome.ask_params:
                self.celery.send_task(names.PARAMS_REQUEST, args=[job_id, self.address],
                                      queue=names.payments_queue(payee))
        except BrokerUnavailable as exc:
            log.warning("job %s: the broker is away, sending on the next attempt: %s", job_id, exc)
            return
        if outcome.payments:
            with db.transaction(self.sessions) as session:
                ledger.mark_sent(session, outcome.payments)


class Receipts:
    """An operator's messages about payments, committed by the recorder once it has checked
    who signed them (`operator`: that operator's registered address, None for one with
    none): its answers on a job's tickets, and the fresh params it made on request."""

    def __init__(self, sessions):
        self.sessions = sessions

    def receipt(self, job_id: str, results: list[dict], operator: str | None) -> int:
        if operator is None:
            return 0
        with db.transaction(self.sessions) as session:
            return ledger.apply_receipt(session, job_id, results, operator)

    def fresh_params(self, job_id: str, params: dict, operator: str | None) -> bool:
        if operator is None:
            return False
        with db.transaction(self.sessions) as session:
            return ledger.apply_fresh_params(session, job_id, params, operator)
