"""The gateway's payment ledger in PostgreSQL: what each succeeded job cost, the tickets
that paid it, and what the chain says happened to them (redemptions, deposits).

Amounts are wei. Face values and win probabilities are uint256, kept exactly in NUMERIC(78);
fees, EVs and credits can be fractions of a wei (prices per pixel are tiny) and are kept to
18 decimal places, rounded down so the credit never overstates what was paid.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction

from sqlalchemy import (
    BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint,
    func, select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.store.tables import Base, JsonColumn
from chain.codec import hex_to_bytes, to_hex
from chain.payment import Payment
from chain.recipient import TicketParams
from chain.ticket import ticket_hash

# Ticket statuses, in the order a ticket moves through them.
ISSUED, SENT, ACCEPTED, REJECTED, REDEEMED = "issued", "sent", "accepted", "rejected", "redeemed"

Wei = Numeric(78, 0)  # a uint256
Amount = Numeric(96, 18)  # wei with fractions


class Settlement(Base):
    """One per succeeded job that was paid: the fee and the tickets that cover it. Its
    existence is what makes settling a job twice issue nothing new."""

    __tablename__ = "settlements"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    sender: Mapped[str] = mapped_column(String(42))
    recipient: Mapped[str] = mapped_column(String(42), index=True)
    fee: Mapped[Decimal] = mapped_column(Amount)
    ev: Mapped[Decimal] = mapped_column(Amount)  # of the tickets issued for this job
    credit_after: Mapped[Decimal] = mapped_column(Amount)
    params: Mapped[dict] = mapped_column(JsonColumn)  # TicketParams.to_dict()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    tickets: Mapped[list["TicketRecord"]] = relationship(order_by="TicketRecord.sender_nonce")


class TicketRecord(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_recipient_rand_hash", "recipient", "recipient_rand_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("settlements.job_id", ondelete="CASCADE"), index=True)
    ticket_hash: Mapped[str] = mapped_column(String(66), unique=True)  # no nonce is ever reused
    sender: Mapped[str] = mapped_column(String(42))
    recipient: Mapped[str] = mapped_column(String(42))
    sender_nonce: Mapped[int] = mapped_column(BigInteger)
    recipient_rand_hash: Mapped[str] = mapped_column(String(66))
    face_value: Mapped[Decimal] = mapped_column(Wei)
    win_prob: Mapped[Decimal] = mapped_column(Wei)
    ev: Mapped[Decimal] = mapped_column(Amount)
    sig: Mapped[str] = mapped_column(String(132))
    status: Mapped[str] = mapped_column(String(16), default=ISSUED, index=True)
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
    """What the sender has paid one recipient beyond the fees so far (go-livepeer's Balance)."""

    __tablename__ = "payment_credits"

    sender: Mapped[str] = mapped_column(String(42), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(42), primary_key=True)
    credit: Mapped[Decimal] = mapped_column(Amount, default=Decimal(0))


class ChainCursor(Base):
    """The last block a reader of the chain has finished."""

    __tablename__ = "chain_cursors"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # reader, contract, account
    block: Mapped[int] = mapped_column(BigInteger)


def to_amount(value: Fraction | int) -> Decimal:
    """A Fraction as the 18-decimal Decimal stored, rounded down."""
    value = Fraction(value)
    with localcontext() as ctx:
        ctx.prec = 120
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal("1e-18"), rounding=ROUND_FLOOR)


# ---- settling ----


class PgNonces:
    """Sender nonces from the tickets already recorded: the next after the highest for these
    params. Params are fresh per job and the job row is locked while settling, so two
    settlements rarely share params; when they do, the unique ticket hash turns the race
    into an IntegrityError and the settle task's retry picks fresh nonces."""

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


def record_settlement(session, job_id: str, fee: Fraction, payment: Payment, credit: Credit,
                      credit_after: Fraction) -> Settlement:
    settlement = Settlement(
        job_id=job_id, sender=payment.sender, recipient=payment.params.recipient, fee=to_amount(fee),
        ev=to_amount(payment.ev), credit_after=to_amount(credit_after), params=payment.params.to_dict(),
    )
    credit.credit = settlement.credit_after
    params = payment.params
    for signed in payment.signed_tickets():
        t = signed.ticket
        settlement.tickets.append(TicketRecord(
            job_id=job_id, ticket_hash=to_hex(ticket_hash(t)), sender=t.sender, recipient=t.recipient,
            sender_nonce=t.sender_nonce, recipient_rand_hash=to_hex(t.recipient_rand_hash),
            face_value=Decimal(t.face_value), win_prob=Decimal(t.win_prob), ev=to_amount(params.ev),
            sig=to_hex(signed.sig), status=ISSUED,
        ))
    session.add(settlement)
    return settlement


def unsent_payment(settlement: Settlement) -> Payment | None:
    """The settlement's tickets not yet handed to the broker, as one Payment."""
    unsent = [t for t in settlement.tickets if t.status == ISSUED]
    if not unsent:
        return None
    return Payment(
        sender=settlement.sender,
        params=TicketParams.from_dict(settlement.params),
        tickets=tuple((t.sender_nonce, hex_to_bytes(t.sig)) for t in unsent),
    )


def mark_sent(session, job_id: str) -> None:
    for ticket in session.scalars(select(TicketRecord).where(TicketRecord.job_id == job_id,
                                                             TicketRecord.status == ISSUED)):
        ticket.status = SENT


def apply_receipt(session, job_id: str, results: list[dict], recipient: str) -> int:
    """The operator's verdicts ({sender_nonce, rejection, winning}) on a job's tickets.
    Informational (the operator could lie). The first verdict stands: a copy delivered twice
    comes back 'replayed', which says nothing of the first; and the chain's word (redeemed)
    outranks the operator's. A receipt may come before the tickets are marked sent."""
    by_nonce = {int(r["sender_nonce"]): r for r in results}
    changed = 0
    for ticket in session.scalars(select(TicketRecord).where(TicketRecord.job_id == job_id,
                                                             TicketRecord.recipient == recipient)):
        result = by_nonce.get(ticket.sender_nonce)
        if result is None or ticket.status not in (ISSUED, SENT):
            continue
        ticket.status = REJECTED if result.get("rejection") else ACCEPTED
        ticket.rejection = result.get("rejection")
        ticket.winning = bool(result.get("winning")) and not result.get("rejection")
        changed += 1
    return changed


# ---- reconciling with the chain ----


def apply_redemption(session, redemption) -> bool:
    """Records a chain.Redemption and marks its ticket redeemed; False if already recorded."""
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
        ticket.status, ticket.winning, ticket.redemption_tx = REDEEMED, True, tx
    return True


def apply_funding(session, event: dict, kind: str, sender: str, amount: int) -> bool:
    """Records one funding event (from TicketBroker.event_logs); False if already recorded."""
    result = session.execute(insert(DepositRecord).values(
        tx_hash=to_hex(event["tx_hash"]), log_index=event["log_index"], block_number=event["block_number"],
        sender=sender, kind=kind, amount=Decimal(amount),
    ).on_conflict_do_nothing())
    return result.rowcount == 1


def cursor(session, name: str) -> int | None:
    row = session.get(ChainCursor, name)
    return row.block if row else None


def set_cursor(session, name: str, block: int) -> None:
    session.merge(ChainCursor(name=name, block=block))


# ---- reading, for the admin API ----


def operator_summaries(session) -> list[dict]:
    """Per operator: what its jobs cost (EV owed), what the tickets sent carry, how many
    the operator accepted, refused and says won, and what the chain paid it."""
    tickets = {
        row.recipient: row for row in session.execute(
            select(
                TicketRecord.recipient,
                func.count().label("tickets"),
                func.count().filter(TicketRecord.status != ISSUED).label("sent"),
                func.count().filter(TicketRecord.status == REJECTED).label("rejected"),
                func.count().filter(TicketRecord.winning.is_(True)).label("winners"),
                func.coalesce(func.sum(TicketRecord.ev), 0).label("ev_sent"),
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
    settled = session.execute(
        select(Settlement.recipient, func.count().label("jobs"), func.sum(Settlement.fee).label("fees"))
        .group_by(Settlement.recipient)
    )
    credits = {c.recipient: c.credit for c in session.scalars(select(Credit))}
    out = []
    for row in settled:
        t, r = tickets.get(row.recipient), redeemed.get(row.recipient)
        out.append({
            "recipient": row.recipient,
            "jobs_paid": row.jobs,
            "ev_owed": _wei(row.fees),
            "ev_sent": _wei(t.ev_sent if t else 0),
            "credit": _wei(credits.get(row.recipient, 0)),
            "tickets_sent": t.sent if t else 0,
            "tickets_rejected": t.rejected if t else 0,
            "winners": t.winners if t else 0,
            "redeemed": r.count if r else 0,
            "redeemed_wei": _wei(r.value if r else 0),
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
