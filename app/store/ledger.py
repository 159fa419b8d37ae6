"""The gateway's payment ledger in PostgreSQL: what each succeeded job owes its operator
(debts), the tickets that pay it and the params they were written against, what the
operator answered, and what the chain says happened (redemptions, deposits).

A debt is written in the same transaction that records the job's success (record_debt,
from app/store/jobs.py), so no crash can separate a success from what it is owed. The
settler (app/settle.py) pays it from here, never from a message that could be lost.

    owed ──(valid params; tickets issued and sent)──▶ issued ──(the operator took them all)──▶ paid
      ▲                                                  │
      └──(the operator lastingly refused some, and the chain can no longer redeem them:
          they are voided, their EV taken back from the credit, and re-issued)

Amounts are wei. Face values and win probabilities are uint256, kept exactly in NUMERIC(78);
fees, EVs and credits can be fractions of a wei (prices per pixel are tiny) and are kept to
18 decimal places, rounded down so the credit never overstates what was paid.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction

from sqlalchemy import (
    BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint,
    delete, func, literal, select, text, update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.store.tables import Base, JsonColumn, Operator
from chain.codec import hex_to_bytes, to_address, to_hex
from chain.payment import Payment
from chain.recipient import TicketParams
from chain.ticket import ticket_hash
from tasks.catalog import Catalog, ModelEntry

log = logging.getLogger(__name__)

# Debt statuses.
OWED, ISSUED, PAID = "owed", "issued", "paid"
# Ticket statuses: issued, handed to the broker, answered (accepted or lastingly refused),
# redeemed on chain (as the watcher saw it, at depth), or void (refused, past redeeming, and
# re-issued).
TICKET_ISSUED, SENT, ACCEPTED, REJECTED, REDEEMED, VOID = (
    "issued", "sent", "accepted", "rejected", "redeemed", "void")
UNANSWERED = (TICKET_ISSUED, SENT)
TAKEN = (ACCEPTED, REDEEMED)
# Refusals that are not the sender's fault: the same tickets are sent again, never voided.
PASSING_REFUSALS = {"no_funds"}

Wei = Numeric(78, 0)  # a uint256
Amount = Numeric(96, 18)  # wei with fractions


class Debt(Base):
    """What one succeeded job run by a paid worker owes its operator, from the moment its
    success is recorded until the operator has taken tickets covering it."""

    __tablename__ = "debts"
    __table_args__ = (
        # The settler's pick (due, not paid) and the owed-unpaid gauge, one small index.
        Index("ix_debts_unpaid", "next_attempt_at", "owed_at", postgresql_where=text("status <> 'paid'")),
        # What an operator is owed and not yet paid for, summed at each of its settlements.
        Index("ix_debts_uncharged", "payee", postgresql_where=text("status = 'owed' AND NOT charged")),
    )

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    payee: Mapped[str] = mapped_column(String(42), index=True)
    fee: Mapped[Decimal] = mapped_column(Amount)
    status: Mapped[str] = mapped_column(String(16), default=OWED)
    # The fee has entered the operator's credit (tickets were issued for it, or the credit
    # covered it); tickets issued after that cover only what voided tickets took back.
    charged: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict | None] = mapped_column(JsonColumn)  # params at hand, not used yet
    refusal: Mapped[str | None] = mapped_column(String(64))  # why the last params were refused
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    tickets: Mapped[list["TicketRecord"]] = relationship(order_by="TicketRecord.id")


class ParamsRecord(Base):
    """Ticket params the gateway signed tickets against, by their recipientRandHash (which
    commits to all of them): what a payment is rebuilt from when it is sent again."""

    __tablename__ = "ticket_params"

    recipient_rand_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("debts.job_id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(42))
    params: Mapped[dict] = mapped_column(JsonColumn)  # TicketParams.to_dict()
    expiration_block: Mapped[int] = mapped_column(BigInteger)
    creation_round: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TicketRecord(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_recipient_rand_hash", "recipient", "recipient_rand_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("debts.job_id", ondelete="CASCADE"), index=True)
    ticket_hash: Mapped[str] = mapped_column(String(66), unique=True)  # no nonce is ever reused
    sender: Mapped[str] = mapped_column(String(42))
    recipient: Mapped[str] = mapped_column(String(42))
    sender_nonce: Mapped[int] = mapped_column(BigInteger)
    recipient_rand_hash: Mapped[str] = mapped_column(String(66))
    face_value: Mapped[Decimal] = mapped_column(Wei)
    win_prob: Mapped[Decimal] = mapped_column(Wei)
    ev: Mapped[Decimal] = mapped_column(Amount)
    sig: Mapped[str] = mapped_column(String(132))
    status: Mapped[str] = mapped_column(String(16), default=TICKET_ISSUED, index=True)
    rejection: Mapped[str | None] = mapped_column(String(64))  # the operator's reason
    winning: Mapped[bool | None] = mapped_column(Boolean)  # None until the operator or the chain says
    redemption_tx: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RedemptionRecord(Base):
    """A WinningTicketRedeemed event of one of our tickets, as the watcher read it."""

    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_hash: Mapped[str] = mapped_column(String(66), unique=True)  # the chain redeems once
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    tx_hash: Mapped[str] = mapped_column(String(66), index=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42))
    recipient: Mapped[str] = mapped_column(String(42), index=True)
    face_value: Mapped[Decimal] = mapped_column(Wei)
    sender_nonce: Mapped[Decimal] = mapped_column(Wei)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    ticket: Mapped[TicketRecord | None] = relationship()


class DepositRecord(Base):
    """The sender's funding events: deposit, reserve, withdrawal."""

    __tablename__ = "deposits"
    __table_args__ = (UniqueConstraint("tx_hash", "log_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Wei)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Credit(Base):
    """What the sender has paid one recipient beyond the fees so far (go-livepeer's Balance);
    negative while voided tickets wait to be re-issued."""

    __tablename__ = "payment_credits"

    sender: Mapped[str] = mapped_column(String(42), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(42), primary_key=True)
    credit: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))


class Refusal(Base):
    """Ticket params the gateway refused to sign against, counted by operator and reason."""

    __tablename__ = "ticket_refusals"

    payee: Mapped[str] = mapped_column(String(42), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChainCursor(Base):
    """The last block a reader of the chain has finished."""

    __tablename__ = "chain_cursors"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # reader, contract, account
    block: Mapped[int] = mapped_column(BigInteger)


class ChainBlock(Base):
    """The hash of a block a reader has read up to, to notice a reorg under it."""

    __tablename__ = "chain_blocks"

    cursor: Mapped[str] = mapped_column(String(128), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))


def now() -> datetime:
    return datetime.now(timezone.utc)


def to_amount(value: Fraction | int) -> Decimal:
    """A Fraction as the 18-decimal Decimal stored, rounded down."""
    value = Fraction(value)
    with localcontext() as ctx:
        ctx.prec = 120
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal("1e-18"), rounding=ROUND_FLOOR)


def job_fee(entry: ModelEntry | None, units: int) -> Fraction:
    """What a job costs, in wei; nothing for a model no longer in the models file."""
    if entry is None:
        return Fraction(0)
    return Fraction(units * entry.price_per_unit, entry.pixels_per_unit)


# ---- debts ----


def record_debt(session, job, payee: str | None, params: dict | None, catalog: Catalog | None) -> bool:
    """Owes a succeeded job's fee, in the caller's transaction: the one that records the
    success. Owed to the registered operator whose worker ran it (job.operator_id, as the
    recorder authenticated it): its address is the payee. The worker's own word (`payee`,
    its OPERATOR_ADDRESS) only says that it is paid at all; one that differs from the
    registered address is logged and not believed. The worker's params, when it made some,
    are kept for the settler; none is fine (it asks the operator). False when nothing is
    owed (an unpaid worker, or no registered operator)."""
    if not payee or job.operator_id is None:
        return False
    entry = catalog.find(job.pipeline, job.model_id) if catalog is not None else None
    at = now()
    owed = {"job_id": job.id, "fee": to_amount(job_fee(entry, job.billable_units)),
            "status": OWED, "charged": False,
            "params": params if isinstance(params, dict) else None, "attempts": 0,
            "next_attempt_at": at, "owed_at": at}
    columns = Debt.__table__.c
    # The operator's registered address read and the debt written in one statement (one
    # round trip of the recorder's transaction); no row when there is no such operator.
    payee_of_debt = session.scalar(insert(Debt).from_select(
        [*owed, "payee"],
        select(*(literal(value, columns[name].type) for name, value in owed.items()),
               Operator.address).where(Operator.id == job.operator_id))
        .on_conflict_do_nothing().returning(Debt.payee))
    if payee_of_debt is None:  # owed before (a repeat), or no registered operator
        return False
    try:
        said = to_address(payee)
    except ValueError:
        said = None
    if said != payee_of_debt:
        log.warning("job %s: its worker says %r is owed; the operator's registered address %s is",
                    job.id, payee, payee_of_debt)
    return True


def next_due(session, at: datetime, job_id: str | None = None) -> Debt | None:
    """One unpaid debt whose next attempt is due (or this job's, due or not), locked until
    commit; debts other settlers hold are skipped, so any number of settlers may run."""
    query = select(Debt).where(Debt.status != PAID)
    query = query.where(Debt.job_id == job_id) if job_id else query.where(Debt.next_attempt_at <= at)
    return session.scalars(query.order_by(Debt.next_attempt_at).limit(1)
                           .with_for_update(skip_locked=True)).first()


def lock_debt(session, job_id: str) -> Debt | None:
    return session.scalars(select(Debt).where(Debt.job_id == job_id).with_for_update()).first()


def schedule(debt: Debt, base: float, cap: float, at: datetime | None = None) -> None:
    """The debt's next attempt, after a backoff that doubles up to `cap` seconds."""
    delay = min(base * 2 ** min(debt.attempts, 30), cap)
    debt.attempts += 1
    debt.next_attempt_at = (at or now()) + timedelta(seconds=delay)


def wake(debt: Debt) -> None:
    """Something changed (params arrived, the operator answered): look at it now."""
    debt.attempts = 0
    debt.next_attempt_at = now()


def mark_paid(debt: Debt) -> None:
    debt.status = PAID
    debt.settled_at = now()
    debt.refusal = None


def apply_fresh_params(session, job_id: str, params: dict, operator: str) -> bool:
    """Params the operator's redeemer made for a job owed to it (`operator`: the address
    of the operator that signed the message), on the gateway's request. Kept for the
    settler, which checks them like any others; False when nothing of this operator's
    waits for them. They are looked at now, unless the debt's last params were refused:
    then at its next attempt, when its backoff is over, so that an operator who keeps
    answering with params the gateway refuses is not asked again every second."""
    debt = lock_debt(session, job_id)
    if debt is None or debt.status != OWED or debt.payee != operator:
        return False
    debt.params = params
    if debt.refusal is None:
        wake(debt)
    return True


def owed_uncharged(session, payee: str, but: str) -> Fraction:
    """The fees of the payee's debts that no ticket or credit has paid yet, besides job
    `but`'s: with it, what one ticket may pay for at once."""
    total = session.scalar(select(func.coalesce(func.sum(Debt.fee), 0)).where(
        Debt.payee == payee, Debt.status == OWED, Debt.charged.is_(False), Debt.job_id != but))
    return Fraction(total)


def wake_owed(session, payee: str, but: str) -> int:
    """The payee's other owed debts, looked at now: a ticket just paid more than its own
    job's fee, and the credit left pays them without one. Those another settler holds are
    skipped (it is looking at them already); waiting on them here could deadlock, since it
    waits on the credit this transaction holds."""
    debts = session.scalars(select(Debt).where(Debt.payee == payee, Debt.status == OWED, Debt.job_id != but)
                            .with_for_update(skip_locked=True)).all()
    for debt in debts:
        debt.next_attempt_at = now()
    return len(debts)


def count_refusal(session, payee: str, reason: str) -> None:
    session.execute(insert(Refusal).values(payee=payee, reason=reason, count=1, last_at=now())
                    .on_conflict_do_update(index_elements=["payee", "reason"],
                                           set_={"count": Refusal.count + 1, "last_at": now()}))


# ---- tickets ----


class PgNonces:
    """Sender nonces from the tickets already recorded: the next after the highest for these
    params. The debt row is locked while settling and params are fresh per job, so two
    settlements rarely share params; when they do, the unique ticket hash turns the race
    into an IntegrityError, and the settler tries again with fresh nonces."""

    def __init__(self, session):
        self.session = session

    def reserve(self, recipient: str, recipient_rand_hash: bytes, count: int) -> int:
        highest = self.session.scalar(
            select(func.max(TicketRecord.sender_nonce)).where(
                TicketRecord.recipient == recipient, TicketRecord.recipient_rand_hash == to_hex(recipient_rand_hash)
            )
        )
        return (highest or 0) + 1


def lock_credit(session, sender: str, recipient: str) -> Credit:
    """The (sender, recipient) credit row, created if missing, locked until commit so the
    settlements of one operator's jobs apply one after another."""
    session.execute(
        insert(Credit).values(sender=sender, recipient=recipient, credit=Decimal(0)).on_conflict_do_nothing()
    )
    return session.scalars(
        select(Credit).where(Credit.sender == sender, Credit.recipient == recipient).with_for_update()
    ).one()


def record_tickets(session, debt: Debt, payment: Payment) -> None:
    """A payment's params and tickets, issued for this debt."""
    params = payment.params
    rand_hash = to_hex(params.recipient_rand_hash)
    session.execute(insert(ParamsRecord).values(
        recipient_rand_hash=rand_hash, job_id=debt.job_id, recipient=params.recipient,
        params=params.to_dict(), expiration_block=params.expiration_block,
        creation_round=params.creation_round,
    ).on_conflict_do_nothing())
    for signed in payment.signed_tickets():
        t = signed.ticket
        session.add(TicketRecord(
            job_id=debt.job_id, ticket_hash=to_hex(ticket_hash(t)), sender=t.sender, recipient=t.recipient,
            sender_nonce=t.sender_nonce, recipient_rand_hash=rand_hash,
            face_value=Decimal(t.face_value), win_prob=Decimal(t.win_prob), ev=to_amount(params.ev),
            sig=to_hex(signed.sig), status=TICKET_ISSUED,
        ))


def live_tickets(session, job_id: str) -> list[TicketRecord]:
    return list(session.scalars(select(TicketRecord).where(TicketRecord.job_id == job_id,
                                                           TicketRecord.status != VOID)
                                .order_by(TicketRecord.id)))


def creation_rounds(session, rand_hashes) -> dict[str, int]:
    rows = session.execute(select(ParamsRecord.recipient_rand_hash, ParamsRecord.creation_round)
                           .where(ParamsRecord.recipient_rand_hash.in_(set(rand_hashes))))
    return dict(rows.all())


def payments_for(session, tickets: list[TicketRecord]) -> list[Payment]:
    """The tickets as Payments, one per params they were written against."""
    by_params: dict[str, list[TicketRecord]] = {}
    for t in tickets:
        by_params.setdefault(t.recipient_rand_hash, []).append(t)
    out = []
    for rand_hash, group in by_params.items():
        record = session.get(ParamsRecord, rand_hash)
        out.append(Payment(sender=group[0].sender, params=TicketParams.from_dict(record.params),
                           tickets=tuple((t.sender_nonce, hex_to_bytes(t.sig)) for t in group)))
    return out


def mark_sent(session, payments: list[Payment]) -> None:
    """The payments' tickets were handed to the broker (those not answered meanwhile)."""
    hashes = [to_hex(st.hash) for p in payments for st in p.signed_tickets()]
    session.execute(update(TicketRecord).where(TicketRecord.ticket_hash.in_(hashes),
                                               TicketRecord.status == TICKET_ISSUED).values(status=SENT))


def void(session, tickets: list[TicketRecord], credit: Credit) -> Decimal:
    """Tickets the operator lastingly refused and the chain can no longer redeem: they pay
    nothing, so their EV comes back off the credit, to be issued again. Returns that EV."""
    taken_back = sum((t.ev for t in tickets), Decimal(0))
    for t in tickets:
        t.status = VOID
    credit.credit = credit.credit - taken_back
    return taken_back


def apply_receipt(session, job_id: str, results: list[dict], operator: str) -> int:
    """The operator's answers ({sender_nonce, rejection, winning}) on a job's tickets
    (`operator`: the address of the operator that signed the receipt; the tickets of
    other recipients are not its to speak of). The first lasting answer stands, and the
    chain's word (redeemed) outranks the operator's; a refusal that is not the sender's
    fault leaves the ticket to be sent again. A debt whose every live ticket was taken is
    paid; one with refusals is looked at now. A receipt may come before the tickets are
    marked sent. Returns how many tickets it changed."""
    debt = lock_debt(session, job_id)
    if debt is None or debt.payee != operator:
        return 0
    by_nonce = {int(r["sender_nonce"]): r for r in results if "sender_nonce" in r}
    changed = 0
    tickets = live_tickets(session, job_id)
    for ticket in tickets:
        result = by_nonce.get(ticket.sender_nonce)
        if result is None or ticket.status not in UNANSWERED:
            continue
        rejection = result.get("rejection")
        ticket.rejection = rejection
        if rejection in PASSING_REFUSALS:
            ticket.status = SENT
        else:
            ticket.status = REJECTED if rejection else ACCEPTED
            ticket.winning = bool(result.get("winning")) and not rejection
        changed += 1
    if debt.status == ISSUED and tickets and all(t.status in TAKEN for t in tickets):
        mark_paid(debt)
    elif any(t.status == REJECTED for t in tickets):
        wake(debt)
    return changed


# ---- reading the chain ----


def watcher_cursor(broker_address: str, sender: str) -> str:
    """The name under which the watcher keeps its place for one broker and sender."""
    return f"watcher:{broker_address}:{sender}"


def apply_redemption(session, redemption) -> bool:
    """Records a chain.Redemption and marks its ticket redeemed; False if already recorded.
    A void ticket stays void (and reconcile reports it: it was paid twice)."""
    hash_hex = to_hex(ticket_hash(redemption.ticket))
    if session.scalar(select(RedemptionRecord.id).where(RedemptionRecord.ticket_hash == hash_hex)):
        return False
    ticket = session.scalar(select(TicketRecord).where(TicketRecord.ticket_hash == hash_hex))
    tx = to_hex(redemption.tx_hash)
    session.add(RedemptionRecord(
        ticket_hash=hash_hex, ticket_id=ticket.id if ticket else None, tx_hash=tx,
        block_number=redemption.block_number, sender=redemption.ticket.sender,
        recipient=redemption.ticket.recipient, face_value=Decimal(redemption.ticket.face_value),
        sender_nonce=Decimal(redemption.ticket.sender_nonce),
    ))
    if ticket is not None:
        if ticket.status != VOID:
            ticket.status = REDEEMED
        ticket.winning, ticket.redemption_tx = True, tx
    return True


def apply_funding(session, event: dict, kind: str, sender: str, amount: int) -> bool:
    """Records one funding event (from TicketBroker.event_logs); False if already recorded."""
    result = session.execute(insert(DepositRecord).values(
        tx_hash=to_hex(event["tx_hash"]), log_index=event["log_index"], block_number=event["block_number"],
        sender=sender, kind=kind, amount=Decimal(amount),
    ).on_conflict_do_nothing())
    return result.rowcount == 1


def unwind(session, sender: str, after_block: int) -> dict:
    """Forgets what was read of blocks after `after_block` (a reorg replaced them): their
    redemptions (tickets back to accepted) and funding events. Returns the counts."""
    redeemed = list(session.scalars(select(RedemptionRecord).where(
        RedemptionRecord.sender == sender, RedemptionRecord.block_number > after_block)))
    for r in redeemed:
        if r.ticket is not None:
            if r.ticket.status == REDEEMED:
                r.ticket.status = ACCEPTED
            r.ticket.redemption_tx = None
        session.delete(r)
    funding = session.execute(delete(DepositRecord).where(
        DepositRecord.sender == sender, DepositRecord.block_number > after_block))
    return {"redemptions": len(redeemed), "deposits": funding.rowcount}


def cursor(session, name: str) -> int | None:
    row = session.get(ChainCursor, name)
    return row.block if row else None


def set_cursor(session, name: str, block: int) -> None:
    session.merge(ChainCursor(name=name, block=block))


def remember_block(session, name: str, number: int, block_hash: bytes) -> None:
    session.merge(ChainBlock(cursor=name, number=number, hash=to_hex(block_hash)))


def remembered_blocks(session, name: str) -> list[tuple[int, str]]:
    """(number, hash) of the blocks remembered for a reader, newest first."""
    return list(session.execute(select(ChainBlock.number, ChainBlock.hash).where(ChainBlock.cursor == name)
                                .order_by(ChainBlock.number.desc())).all())


def forget_blocks(session, name: str, *, after: int | None = None, before: int | None = None) -> None:
    query = delete(ChainBlock).where(ChainBlock.cursor == name)
    if after is not None:
        query = query.where(ChainBlock.number > after)
    if before is not None:
        query = query.where(ChainBlock.number < before)
    session.execute(query)


# ---- reading, for the admin API ----


def operator_summaries(session, unpaid_after: timedelta) -> list[dict]:
    """Per operator: its jobs owed and paid, what their fees come to (EV owed), what the
    live tickets carry, how many the operator took, refused, and says won, what the chain
    paid it, the debts unpaid past `unpaid_after`, and the gateway's refusals of its params."""
    tickets = {
        row.recipient: row for row in session.execute(
            select(
                TicketRecord.recipient,
                func.count().filter(TicketRecord.status.notin_([TICKET_ISSUED, VOID])).label("sent"),
                func.count().filter(TicketRecord.status == REJECTED).label("rejected"),
                func.count().filter(TicketRecord.status == VOID).label("void"),
                func.count().filter(TicketRecord.winning.is_(True)).label("winners"),
                func.coalesce(func.sum(TicketRecord.ev).filter(TicketRecord.status != VOID), 0).label("ev_sent"),
            ).group_by(TicketRecord.recipient)
        )
    }
    redeemed = {
        row.recipient: row for row in session.execute(
            select(RedemptionRecord.recipient, func.count().label("count"),
                   func.sum(RedemptionRecord.face_value).label("value"))
            .group_by(RedemptionRecord.recipient)
        )
    }
    cutoff = now() - unpaid_after
    debts = session.execute(
        select(Debt.payee, func.count().label("jobs"),
               func.count().filter(Debt.status == PAID).label("paid"),
               func.sum(Debt.fee).label("fees"),
               func.coalesce(func.sum(Debt.fee).filter(Debt.status != PAID), 0).label("owed"),
               func.count().filter(Debt.status != PAID, Debt.owed_at < cutoff).label("unpaid"),
               func.coalesce(func.sum(Debt.fee).filter(Debt.status != PAID, Debt.owed_at < cutoff), 0)
               .label("unpaid_wei"))
        .group_by(Debt.payee)
    )
    credits = {c.recipient: c.credit for c in session.scalars(select(Credit))}
    refusals: dict[str, dict[str, int]] = {}
    for r in session.scalars(select(Refusal)):
        refusals.setdefault(r.payee, {})[r.reason] = r.count
    out = []
    for row in debts:
        t, r = tickets.get(row.payee), redeemed.get(row.payee)
        out.append({
            "recipient": row.payee,
            "jobs_owed": row.jobs,
            "jobs_paid": row.paid,
            "ev_owed": _wei(row.fees),
            "owed": _wei(row.owed),
            "owed_unpaid": {"jobs": row.unpaid, "wei": _wei(row.unpaid_wei)},
            "ev_sent": _wei(t.ev_sent if t else 0),
            "credit": _wei(credits.get(row.payee, 0)),
            "tickets_sent": t.sent if t else 0,
            "tickets_rejected": t.rejected if t else 0,
            "tickets_void": t.void if t else 0,
            "winners": t.winners if t else 0,
            "redeemed": r.count if r else 0,
            "redeemed_wei": _wei(r.value if r else 0),
            "refusals": refusals.get(row.payee, {}),
        })
    return sorted(out, key=lambda o: o["recipient"])


def funding_totals(session, sender: str | None) -> dict:
    rows = session.execute(
        select(DepositRecord.kind, func.sum(DepositRecord.amount)).where(DepositRecord.sender == sender)
        .group_by(DepositRecord.kind)
    )
    return {kind: _wei(total) for kind, total in rows}


def payouts(session, limit: int, before: int | None = None) -> list[dict]:
    """Redemptions, newest first, with the job each ticket paid for."""
    query = select(RedemptionRecord).order_by(RedemptionRecord.id.desc()).limit(limit)
    if before is not None:
        query = query.where(RedemptionRecord.id < before)
    return [{
        "id": r.id,
        "tx_hash": r.tx_hash,
        "block_number": r.block_number,
        "recipient": r.recipient,
        "sender": r.sender,
        "face_value": _wei(r.face_value),
        "sender_nonce": int(r.sender_nonce),
        "job_id": r.ticket.job_id if r.ticket else None,
        "seen_at": r.seen_at.isoformat(),
    } for r in session.scalars(query)]


def _wei(value) -> str:
    """A decimal string: JSON numbers lose precision above 2**53."""
    return format(Decimal(value or 0).normalize(), "f")
