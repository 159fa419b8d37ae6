"""Does the ledger agree with the chain, and with itself? For one gateway address:

- every redemption on chain of the gateway's tickets, up to where the watcher has read, is
  in the ledger once, with the same transaction, and nothing else is;
- every redemption in the ledger is of a ticket redeemed on chain (so used there), that the
  gateway issued and did not void (a voided ticket redeemed would be a job paid twice);
- every ticket marked redeemed has its redemption, and no ticket was issued twice;
- every debt is paid or still owed, a paid one has no ticket left unanswered or refused,
  and for each operator whose debts are all paid, the live tickets' EV covers the fees
  within one ticket (the credit).

`flask --app app chain reconcile` prints the differences and exits non-zero when there are
any; devstack/invariants.py asserts there are none after every payment fault test.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from sqlalchemy import func, select

from app.store import ledger
from chain.codec import to_hex
from chain.ticket import ticket_hash

# Amounts are kept to 1e-18 wei, rounded down at each settlement: what that can add up to.
ROUNDING = Fraction(1, 10**9)


def differences(session, broker, sender: str, from_block: int = 0) -> list[str]:
    """What disagrees, one line each; empty when ledger and chain agree."""
    found = _redemptions(session, broker, sender, from_block)
    found += _tickets(session, sender)
    found += _debts(session, sender)
    return found


def _redemptions(session, broker, sender: str, from_block: int) -> list[str]:
    read_to = ledger.cursor(session, ledger.watcher_cursor(broker.address, sender))
    if read_to is None:
        return ["the watcher has read nothing yet"]
    on_chain = {to_hex(ticket_hash(r.ticket)): to_hex(r.tx_hash)
                for r in broker.redemption_events(from_block, read_to, sender=sender)}
    recorded = {r.ticket_hash: r for r in session.scalars(select(ledger.RedemptionRecord).where(
        ledger.RedemptionRecord.sender == sender))}
    found = []
    for hash_hex, tx in on_chain.items():
        row = recorded.get(hash_hex)
        if row is None:
            found.append(f"ticket {hash_hex} redeemed on chain in {tx}, not in the ledger")
        elif row.tx_hash != tx:
            found.append(f"ticket {hash_hex} redeemed in {tx} on chain, in {row.tx_hash} in the ledger")
    for hash_hex, row in recorded.items():
        if hash_hex not in on_chain:
            found.append(f"ticket {hash_hex} redeemed in the ledger ({row.tx_hash}), not on chain")
        if row.ticket is None:
            found.append(f"ticket {hash_hex} redeemed on chain was never issued by the gateway")
        elif row.ticket.status == ledger.VOID:
            found.append(f"ticket {hash_hex} of job {row.ticket.job_id} was voided and re-issued, "
                         "yet redeemed: paid twice")
    return found


def _tickets(session, sender: str) -> list[str]:
    found = []
    orphans = session.scalars(select(ledger.TicketRecord.ticket_hash).where(
        ledger.TicketRecord.sender == sender, ledger.TicketRecord.status == ledger.REDEEMED,
        ~select(ledger.RedemptionRecord.id).where(
            ledger.RedemptionRecord.ticket_id == ledger.TicketRecord.id).exists()))
    found += [f"ticket {h} is marked redeemed with no redemption read from the chain" for h in orphans]
    return found


def _debts(session, sender: str) -> list[str]:
    found = []
    odd = session.scalars(select(ledger.Debt.job_id).where(
        ledger.Debt.status.notin_([ledger.OWED, ledger.ISSUED, ledger.PAID])))
    found += [f"debt of job {job_id} is neither paid nor owed" for job_id in odd]
    loose = session.execute(select(ledger.Debt.job_id, ledger.TicketRecord.status).join(
        ledger.TicketRecord, ledger.TicketRecord.job_id == ledger.Debt.job_id).where(
        ledger.Debt.status == ledger.PAID,
        ledger.TicketRecord.status.in_([*ledger.UNANSWERED, ledger.REJECTED])))
    found += [f"debt of job {job_id} is paid with a ticket {status}" for job_id, status in loose]
    for payee, fees, unpaid in session.execute(
            select(ledger.Debt.payee, func.sum(ledger.Debt.fee),
                   func.count().filter(ledger.Debt.status != ledger.PAID)).group_by(ledger.Debt.payee)):
        if unpaid:
            continue  # in flight: coverage is checked once everything is paid
        found += _coverage(session, sender, payee, fees)
    return found


def _coverage(session, sender: str, payee: str, fees: Decimal) -> list[str]:
    live = (ledger.TicketRecord.recipient == payee, ledger.TicketRecord.sender == sender,
            ledger.TicketRecord.status != ledger.VOID)
    ev = session.scalar(select(func.coalesce(func.sum(ledger.TicketRecord.ev), 0)).where(*live))
    largest = session.scalar(select(func.coalesce(func.max(ledger.TicketRecord.ev), 0)).where(*live))
    over = Fraction(ev) - Fraction(fees)  # exact: Decimal arithmetic rounds at 28 digits
    if over < -ROUNDING:
        return [f"operator {payee}: tickets carry {ev} wei of EV for {fees} wei of fees: underpaid"]
    if over >= Fraction(largest) + ROUNDING and over > ROUNDING:
        return [f"operator {payee}: tickets carry {ev} wei of EV for {fees} wei of fees: "
                f"more than one ticket ({largest} wei) over"]
    return []
