"""What must hold after any fault: checked against the database, the broker and disk.
tests/conftest.py checks them after every test marked `fault`, over the jobs that test
made, and bench/soak.py after its run of random faults."""

import os
import time
from datetime import datetime
from fractions import Fraction

from sqlalchemy import select

from app.store import inputs
from app.store.media import MediaStore
from app.store.tables import Job, JobHistory
from devstack.stack import wait_for
from tasks import control
from tasks.status import FINAL_STATUSES


def jobs_since(sessions, since: datetime) -> list[str]:
    """The jobs made at or after `since` that ran here (not on a fallback gateway)."""
    with sessions() as session:
        return list(session.scalars(select(Job.id).where(Job.created_at >= since,
                                                         Job.ran_on.is_(None))))


def assert_jobs_final_exactly_once(sessions, redis, job_ids, timeout: float = 0) -> None:
    """Every accepted job reached one final state, recorded once, and its control record
    agrees: nothing will run it again. Waits up to `timeout` for the jobs to be final."""
    def unfinished():
        with sessions() as session:
            return [j for j in job_ids if session.get(Job, j).status not in FINAL_STATUSES]

    if timeout:
        wait_for(lambda: not unfinished(), timeout=timeout, interval=0.5,
                 what="every job to be final")
    with sessions() as session:
        for job_id in job_ids:
            job = session.get(Job, job_id)
            assert job.status in FINAL_STATUSES, (job_id, job.status)
            finals = session.scalars(select(JobHistory.status).where(
                JobHistory.job_id == job_id, JobHistory.status.in_(FINAL_STATUSES))).all()
            assert finals == [job.status], (job_id, finals)
            assert control.state(redis, job_id) == job.status
            assert job_id not in control.running(redis)


def assert_no_orphan_media(sessions, media: MediaStore, since: float = 0.0) -> None:
    """Every result file (written since `since`, a unix time) belongs to a job's result:
    a retried recording rewrites the same names, and an interrupted write leaves no
    temporary file (.tmp-*) behind. Every upload kept for a worker (app/store/inputs.py)
    belongs to a job not yet final."""
    with sessions() as session:
        referenced = {image["media"] for result in session.scalars(
            select(Job.result).where(Job.result.isnot(None)))
            for image in result.get("images", []) if "media" in image}
        unfinished = session.execute(select(Job.id, Job.pipeline)
                                     .where(Job.status.not_in(FINAL_STATUSES))).all()
    kept = {name for job_id, pipeline in unfinished
            for name in inputs.kept_names(media, job_id, pipeline)}
    on_disk = {entry.name for folder in (media.directory, media.inputs)
               for entry in os.scandir(folder)
               if entry.is_file() and entry.stat().st_mtime >= since}
    assert on_disk <= referenced | kept, on_disk - referenced - kept


def media_of(stack) -> MediaStore:
    """The stack's media store, as its processes have it."""
    return MediaStore(stack.env["MEDIA_DIR"], stack.env["MEDIA_SECRET"])


def now() -> float:
    return time.time()


# -- payments ------------------------------------------------------------------------------


def assert_every_success_paid_once(sessions, job_ids, payee: str, ticket_ev) -> None:
    """Every succeeded job among job_ids owes its operator a debt, and it is paid: the live
    tickets the operator took cover the fees of all its debts within one ticket (the
    credit), and no ticket voided for re-issue was also taken."""
    from app.store import ledger

    with sessions() as session:
        succeeded = set(session.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.status == "succeeded")))
        debts = {d.job_id: d for d in session.scalars(select(ledger.Debt).where(ledger.Debt.payee == payee))}
        assert succeeded <= set(debts), succeeded - set(debts)
        assert all(d.status == ledger.PAID for d in debts.values()), \
            {j: d.status for j, d in debts.items() if d.status != ledger.PAID}
        tickets = session.scalars(select(ledger.TicketRecord).where(ledger.TicketRecord.recipient == payee)).all()
    live = [t for t in tickets if t.status != ledger.VOID]
    assert all(t.status in ledger.TAKEN for t in live), {t.ticket_hash: t.status for t in live}
    # Exact sums (Decimal arithmetic would round at 28 digits); each amount was rounded down
    # to 1e-18 wei when stored, which the tolerance allows for.
    over = sum(Fraction(t.ev) for t in live) - sum(Fraction(d.fee) for d in debts.values())
    assert Fraction(-1, 10**9) < over < ticket_ev, float(over)


def assert_nothing_owed_but_successes(sessions, job_ids) -> None:
    """At any moment, whatever a fault did: only a succeeded job owes (one debt, its own
    fee), and no payee holds live tickets worth more than its debts by a whole ticket
    (the credit a ticket's granularity leaves): nothing is paid that was not earned."""
    from app.store import ledger

    with sessions() as session:
        debts = session.scalars(select(ledger.Debt).where(ledger.Debt.job_id.in_(job_ids))).all()
        status = dict(session.execute(select(Job.id, Job.status).where(
            Job.id.in_([d.job_id for d in debts]))).all())
        assert all(status[d.job_id] == "succeeded" for d in debts), \
            {d.job_id: status[d.job_id] for d in debts if status[d.job_id] != "succeeded"}
        for payee in {d.payee for d in debts}:
            owed = sum(Fraction(fee) for fee in session.scalars(
                select(ledger.Debt.fee).where(ledger.Debt.payee == payee)))
            live = session.scalars(select(ledger.TicketRecord).where(
                ledger.TicketRecord.recipient == payee,
                ledger.TicketRecord.status != ledger.VOID)).all()
            largest = max((Fraction(t.ev) for t in live), default=Fraction(0))
            over = sum(Fraction(t.ev) for t in live) - owed
            assert over <= largest, (payee, float(over))


def assert_ledger_equals_chain(sessions, broker, sender: str) -> None:
    """No ticket redeemed twice, none voided and redeemed, and the ledger holds exactly the
    chain's redemptions of the gateway's tickets (app/reconcile.py finds no difference),
    once the watcher has read the whole chain."""
    from app import reconcile
    from app.store import ledger
    from chain.codec import to_hex
    from chain.ticket import ticket_hash

    head = broker.block_number()
    name = ledger.watcher_cursor(broker.address, sender)

    def read_to() -> int:
        with sessions() as session:
            return ledger.cursor(session, name) or -1

    wait_for(lambda: read_to() >= head, timeout=60, what="the watcher to read the chain")
    redeemed = [to_hex(ticket_hash(r.ticket)) for r in broker.redemption_events(0, sender=sender)]
    assert len(redeemed) == len(set(redeemed))
    with sessions() as session:
        assert reconcile.differences(session, broker, sender) == []
