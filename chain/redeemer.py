"""The operator's redeemer, its logic: validates every ticket of the payments the gateway
sends, keeps the winners and redeems them on the TicketBroker. The process that feeds it
(the payments queue) and the store it keeps winners in are the operator's
(workers/redeemer.py); the chain is behind the small Broker protocol.

A ticket is refused, and the reason logged and counted, when it is for another recipient,
its params were altered or are not ours (rand hash), its signature is not the sender's, its
params have expired, its nonce (or its params' revealed rand) was seen before, the sender's
funds cannot pay it, or the payment does not parse. Winners wait in the operator's store
and are redeemed, batched when several, once their params expire, when their
creation round is about to run out, when `batch_size` are waiting or when one has waited
`max_wait` seconds, under a gas-price cap. A redemption the contract refuses keeps the
ticket with the reason; a network error or a gas price above the cap tries again later.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from .broker import NETWORK_ERRORS, Broker, GasPriceTooHigh, SenderInfo, TransactionReverted
from .codec import to_hex
from .payment import Payment
from .recipient import Recipient
from .ticket import Ticket, ticket_hash
from .validator import Rejection, SeenNonces, TicketValidator, Verdict

log = logging.getLogger("chain.redeemer")
USED = "ticket is used"  # the contract's reason for a ticket redeemed before


@dataclass(frozen=True)
class Winner:
    """A winning ticket kept until it is redeemed."""

    ticket: Ticket
    sig: bytes
    recipient_rand: int
    expiration_block: int  # of the params the ticket was written against
    job_id: str | None = None
    received_at: float = 0.0
    attempts: int = 0

    @property
    def hash(self) -> str:
        return to_hex(ticket_hash(self.ticket))


class WinnerStore(SeenNonces, Protocol):
    """Where the operator keeps the nonces it has seen and its winners until redeemed."""

    def prune(self, current_block: int) -> None: ...
    def keep(self, winner: Winner) -> bool: ...
    def pending(self) -> list[Winner]: ...
    def pending_face_value(self, sender: str) -> int: ...
    def revealed(self, recipient_rand_hash: bytes) -> bool: ...
    def mark_redeemed(self, ticket_hash_hex: str, tx_hash: str | None,
                      reason: str | None = None) -> None: ...
    def mark_failed(self, ticket_hash_hex: str, reason: str) -> None: ...
    def note_error(self, ticket_hash_hex: str, reason: str) -> None: ...
    def count_rejection(self, reason: str, count: int = 1) -> None: ...


def due(winners: list[Winner], *, current_block: int, current_round: int, validity_rounds: int,
        batch_size: int, max_wait: float, now: float) -> bool:
    """Whether to redeem now. Redeeming early is safe, since each job has its own params and
    params whose rand is revealed take no more tickets; waiting only batches more tickets
    into one transaction. But a ticket must be redeemed within its creation round's
    validity, and waiting past a params' expiry gains nothing."""
    if len(winners) >= batch_size:
        return True
    return any(
        w.expiration_block <= current_block
        or w.ticket.creation_round + validity_rounds - 1 <= current_round
        or now - w.received_at >= max_wait
        for w in winners
    )


class Redeemer:
    def __init__(self, recipient: Recipient, broker: Broker, store: WinnerStore, *,
                 max_gas_price: int | None = None, batch_size: int = 20, max_wait: float = 3600.0,
                 acknowledge=None, clock=time.time):
        self.recipient = recipient
        self.broker = broker
        self.store = store
        self.max_gas_price = max_gas_price
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.acknowledge = acknowledge  # (job_id, results) -> None: tells the gateway
        self.clock = clock

    @cached_property
    def validity_rounds(self) -> int:
        """The broker's ticket validity period, read from the chain on first need (a
        redeemer is made before the chain may answer)."""
        return self.broker.ticket_validity_period()

    @cached_property
    def validator(self) -> TicketValidator:
        return TicketValidator(self.recipient.address, self.recipient.secret, seen=self.store,
                               ticket_validity_rounds=self.validity_rounds)

    # ---- receiving ----

    def receive(self, job_id: str | None, raw: dict) -> dict:
        """Validates a payment and keeps its winners. A chain that does not answer raises a
        network error before anything is recorded, so the task can be retried whole."""
        try:
            payment = Payment.from_dict(raw)
        except (KeyError, TypeError, ValueError) as exc:
            self._refuse(job_id, Rejection.MALFORMED, 1, str(exc))
            return {"accepted": 0, "winners": 0, "rejected": {Rejection.MALFORMED.value: 1}}
        # Every chain read comes before the first write (the validator records nonces).
        block, round_ = self.broker.block_number(), self.broker.current_round()
        funds = self.broker.sender_info(payment.sender)
        if self.store.revealed(payment.params.recipient_rand_hash):
            verdicts = [Verdict(st.ticket, st.sig, Rejection.REPLAYED) for st in payment.signed_tickets()]
        else:
            verdicts = self.validator.validate_payment(payment, current_block=block, current_round=round_)
        if any(v.ok for v in verdicts) and not self._funded(payment, funds, round_):
            verdicts = [v if not v.ok else Verdict(v.ticket, v.sig, Rejection.NO_FUNDS) for v in verdicts]
        return self._record(job_id, payment, verdicts)

    def _funded(self, payment: Payment, info: SenderInfo, current_round: int) -> bool:
        """Whether the sender's deposit and reserve, less what our waiting winners will draw,
        can pay one more winner: a ticket its sender cannot cover is worth nothing. A sender
        past its unlock period can withdraw at will, so its funds count as none."""
        if info.withdraw_round and current_round >= info.withdraw_round:
            return False
        available = info.deposit + info.reserve - self.store.pending_face_value(payment.sender)
        return available >= payment.params.face_value

    def _record(self, job_id: str | None, payment: Payment, verdicts: list[Verdict]) -> dict:
        results, rejected, winners = [], {}, 0
        for v in verdicts:
            if v.ok and v.winning:
                winners += self.store.keep(Winner(v.ticket, v.sig, v.recipient_rand,
                                                  payment.params.expiration_block, job_id, self.clock()))
            elif not v.ok:
                rejected[v.rejection.value] = rejected.get(v.rejection.value, 0) + 1
            results.append({"sender_nonce": v.ticket.sender_nonce,
                            "rejection": v.rejection.value if v.rejection else None,
                            "winning": v.ok and v.winning})
        for reason, count in rejected.items():
            self._refuse(job_id, Rejection(reason), count, f"from {payment.sender}")
        if self.acknowledge is not None and job_id:
            self.acknowledge(job_id, results)
        accepted = sum(1 for v in verdicts if v.ok)
        log.info("job %s: %d tickets accepted, %d winning, %d refused", job_id, accepted, winners,
                 len(verdicts) - accepted)
        return {"accepted": accepted, "winners": winners, "rejected": rejected}

    def _refuse(self, job_id, reason: Rejection, count: int, detail: str) -> None:
        self.store.count_rejection(reason.value, count)
        log.warning("job %s: %d tickets refused: %s (%s)", job_id, count, reason.value, detail)

    # ---- redeeming ----

    def redeem_due(self) -> int:
        """Redeems the waiting winners if any is due; returns how many were redeemed."""
        block, round_ = self.broker.block_number(), self.broker.current_round()
        self.store.prune(block)
        pending = self.store.pending()
        if not pending or not due(pending, current_block=block, current_round=round_,
                                  validity_rounds=self.validity_rounds, batch_size=self.batch_size,
                                  max_wait=self.max_wait, now=self.clock()):
            return 0
        redeemed = 0
        for start in range(0, len(pending), self.batch_size):
            redeemed += self._redeem(pending[start:start + self.batch_size])
        return redeemed

    def _redeem(self, winners: list[Winner]) -> int:
        items = [(w.ticket, w.sig, w.recipient_rand) for w in winners]
        try:
            if len(items) == 1:
                receipt = self.broker.redeem(*items[0], max_gas_price=self.max_gas_price)
                redemptions, refused = self.broker.redemptions(receipt), []
            else:
                result = self.broker.batch_redeem(items, max_gas_price=self.max_gas_price)
                redemptions, refused = result.redeemed, result.refused
        except GasPriceTooHigh as exc:
            log.info("redemption of %d winners waits: %s", len(winners), exc)
            return 0
        except TransactionReverted as exc:
            if len(winners) == 1:
                self._refused(winners[0], exc.reason)
            else:  # the batch as a whole: each ticket's own verdict comes next time
                for w in winners:
                    self.store.note_error(w.hash, exc.reason)
            return 0
        except NETWORK_ERRORS as exc:
            log.warning("redemption of %d winners will be retried: %s", len(winners), exc)
            return 0
        by_hash = {w.hash: w for w in winners}
        for r in redemptions:
            winner = by_hash.pop(to_hex(ticket_hash(r.ticket)), None)
            if winner is not None:
                self.store.mark_redeemed(winner.hash, to_hex(r.tx_hash))
                log.info("redeemed ticket %s of job %s for %d wei in %s", winner.hash, winner.job_id,
                         winner.ticket.face_value, to_hex(r.tx_hash))
        for index, reason in refused:
            self._refused(winners[index], reason)
            by_hash.pop(winners[index].hash, None)
        for hash_hex in by_hash:  # sent, yet not redeemed: the contract skipped it
            self.store.note_error(hash_hex, "skipped by batchRedeemWinningTickets")
        return len(redemptions)

    def _refused(self, winner: Winner, reason: str) -> None:
        if reason == USED:
            # Redeemed already, by us or by anyone: the contract paid the recipient either way.
            self.store.mark_redeemed(winner.hash, None, reason)
            return
        log.warning("winning ticket %s of job %s not redeemable: %s", winner.hash, winner.job_id, reason)
        self.store.mark_failed(winner.hash, reason)
