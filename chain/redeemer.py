"""The operator's redeemer, its logic: judges every ticket of the payments the gateway
sends, keeps its answers and the winners, and redeems the winners on the TicketBroker. The
process that feeds it (the payments queue) and the store it keeps them in are the operator's
(workers/redeemer.py); the chain is behind the small Broker protocol.

A ticket is refused, and the reason logged, counted and told to the gateway, when it is for
another recipient, its params were altered or are not ours (rand hash), its signature is not
the sender's, its params have expired, its params' rand was revealed by a redemption, the
sender's funds cannot pay it, or the payment does not parse. The answer on a ticket its
sender signed is kept with its nonce in the same transaction as the winners, so a crash keeps
both or neither, and a copy of the ticket gets the same answer again: the gateway re-issues
only tickets the redeemer lastingly refused (`expired`, say), and never one it took. A lack
of funds is not the sender's fault and keeps no nonce: the same tickets may be sent again.

Winners wait in the operator's store and are redeemed, batched when several, once their
params expire, when their creation round is about to run out, when `batch_size` are waiting
or when one has waited `max_wait` seconds, under a gas-price cap. A redemption is
provisional until its block is `confirmations` deep; one a reorg undid is redeemed again. A
redemption the contract refuses keeps the ticket with the reason; a network error, a gas
price above the cap or a batch that skipped it tries again later, with no ceiling: the
ticket's own expiry on chain ends the tries.
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
from .validator import Rejection, TicketValidator, Verdict

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


@dataclass(frozen=True)
class Answer:
    """The redeemer's word on one ticket, as the gateway is told it. A copy of a ticket seen
    before gets the first answer again (`repeat`), so the word never changes: the gateway
    re-issues tickets only on a lasting refusal, and this is what makes one last."""

    sender_nonce: int
    rejection: str | None
    winning: bool
    repeat: bool = False

    def to_dict(self) -> dict:
        return {"sender_nonce": self.sender_nonce, "rejection": self.rejection,
                "winning": self.winning, "repeat": self.repeat}


@dataclass(frozen=True)
class Entry:
    """One ticket of a payment as the redeemer judged it, for the store to record."""

    answer: Answer
    # The sender signed it (signature and rand hash check out): only then may a kept answer
    # on its nonce be given again, and only then is its own answer kept. Else a forger
    # could learn or fix the answer to a nonce of the real sender's.
    authentic: bool
    durable: bool  # kept with the nonce: the answer cannot change
    winner: "Winner | None" = None  # an accepted winner, to keep until redeemed


# Answers on a ticket its sender signed that no later event can change: taken, expired, or
# written on params whose rand a redemption revealed. A sender's lack of funds or a chain
# error is not the sender's fault, and may pass: those refusals keep no nonce.
DURABLE = {None, Rejection.EXPIRED, Rejection.REPLAYED}
# Refusals of a ticket whose sender cannot be told from its signature and params.
UNAUTHENTIC = {Rejection.WRONG_RECIPIENT, Rejection.ZERO_SENDER, Rejection.BAD_RAND_HASH,
               Rejection.BAD_SIGNATURE, Rejection.MALFORMED}


class WinnerStore(Protocol):
    """Where the operator keeps its answers (by nonce) and its winners until redeemed."""

    def record(self, sender: str, recipient_rand_hash: bytes, expiration_block: int,
               entries: list[Entry]) -> list[Answer]:
        """In one transaction: each authentic ticket's nonce that has an answer kept gets it
        again; else a durable answer is kept with its nonce; and each accepted winner whose
        answer stands is kept. Returns the answers that stand, in order."""
    def prune(self, current_block: int, now: float) -> None: ...
    def pending(self) -> list[Winner]: ...
    def submitted(self) -> list[Winner]: ...
    def pending_face_value(self, sender: str) -> int: ...
    def revealed(self, recipient_rand_hash: bytes) -> bool: ...
    def mark_submitted(self, ticket_hash_hex: str, tx_hash: str | None, reason: str | None = None) -> None: ...
    def mark_redeemed(self, ticket_hash_hex: str) -> None: ...
    def unsubmit(self, ticket_hash_hex: str) -> None: ...
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
                 confirmations: int = 0, acknowledge=None, clock=time.time):
        self.recipient = recipient
        self.broker = broker
        self.store = store
        self.max_gas_price = max_gas_price
        self.batch_size = batch_size
        self.max_wait = max_wait
        # A redemption counts once its block is this deep; until then a reorg may undo it,
        # and the winner is redeemed again.
        self.confirmations = confirmations
        self.acknowledge = acknowledge  # (job_id, [Answer.to_dict()]) -> None: tells the gateway
        self.clock = clock

    @cached_property
    def validity_rounds(self) -> int:
        """The broker's ticket validity period, read from the chain on first need (a
        redeemer is made before the chain may answer)."""
        return self.broker.ticket_validity_period()

    @cached_property
    def validator(self) -> TicketValidator:
        return TicketValidator(self.recipient.address, self.recipient.secret,
                               ticket_validity_rounds=self.validity_rounds)

    # ---- receiving ----

    def receive(self, job_id: str | None, raw: dict) -> dict:
        """Judges a payment's tickets, then keeps the answers and the winners in one
        transaction. A chain that does not answer raises a network error before anything
        is recorded, so the task can be retried whole."""
        try:
            payment = Payment.from_dict(raw)
        except (KeyError, TypeError, ValueError) as exc:
            self._refuse(job_id, Rejection.MALFORMED.value, 1, str(exc))
            return {"accepted": 0, "winners": 0, "rejected": {Rejection.MALFORMED.value: 1}, "repeats": 0}
        # Every chain read comes before the first write.
        block, round_ = self.broker.block_number(), self.broker.current_round()
        funds = self.broker.sender_info(payment.sender)
        verdicts = self._judge(payment, block, round_)
        if any(v.ok for v in verdicts) and not self._funded(payment, funds, round_):
            verdicts = [v if not v.ok else Verdict(v.ticket, v.sig, Rejection.NO_FUNDS) for v in verdicts]
        entries = [self._entry(payment, v, job_id) for v in verdicts]
        answers = self.store.record(payment.sender, payment.params.recipient_rand_hash,
                                    payment.params.expiration_block, entries)
        return self._answered(job_id, payment, answers)

    def _judge(self, payment: Payment, block: int, round_: int) -> list[Verdict]:
        params = payment.params
        revealed = self.store.revealed(params.recipient_rand_hash)
        verdicts = []
        for st in payment.signed_tickets():
            v = self.validator.check(st.ticket, st.sig, seed=params.seed,
                                     expiration_block=params.expiration_block,
                                     current_block=block, current_round=round_)
            if v.ok and revealed:  # the sender could pick losing nonces now
                v = Verdict(v.ticket, v.sig, Rejection.REPLAYED)
            verdicts.append(v)
        return verdicts

    def _entry(self, payment: Payment, v: Verdict, job_id: str | None) -> Entry:
        reason = v.rejection.value if v.rejection else None
        answer = Answer(v.ticket.sender_nonce, reason, v.winning)
        winner = Winner(v.ticket, v.sig, v.recipient_rand, payment.params.expiration_block, job_id,
                        self.clock()) if v.winning else None
        authentic = v.rejection not in UNAUTHENTIC
        return Entry(answer, authentic, authentic and v.rejection in DURABLE, winner)

    def _funded(self, payment: Payment, info: SenderInfo, current_round: int) -> bool:
        """Whether the sender's deposit and reserve, less what our waiting winners will draw,
        can pay one more winner: a ticket its sender cannot cover is worth nothing. A sender
        past its unlock period can withdraw at will, so its funds count as none."""
        if info.withdraw_round and current_round >= info.withdraw_round:
            return False
        available = info.deposit + info.reserve - self.store.pending_face_value(payment.sender)
        return available >= payment.params.face_value

    def _answered(self, job_id: str | None, payment: Payment, answers: list[Answer]) -> dict:
        fresh = [a for a in answers if not a.repeat]
        rejected: dict[str, int] = {}
        for a in fresh:
            if a.rejection:
                rejected[a.rejection] = rejected.get(a.rejection, 0) + 1
        for reason, count in rejected.items():
            self._refuse(job_id, reason, count, f"from {payment.sender}")
        if self.acknowledge is not None and job_id:
            self.acknowledge(job_id, [a.to_dict() for a in answers])
        accepted = sum(1 for a in fresh if a.rejection is None)
        winners = sum(1 for a in fresh if a.rejection is None and a.winning)
        repeats = len(answers) - len(fresh)
        log.info("job %s: %d tickets accepted, %d winning, %d refused, %d copies answered again",
                 job_id, accepted, winners, len(fresh) - accepted, repeats)
        return {"accepted": accepted, "winners": winners, "rejected": rejected, "repeats": repeats}

    def _refuse(self, job_id, reason: str, count: int, detail: str) -> None:
        self.store.count_rejection(reason, count)
        log.warning("job %s: %d tickets refused: %s (%s)", job_id, count, reason, detail)

    # ---- redeeming ----

    def redeem_due(self) -> int:
        """Confirms or undoes earlier redemptions, then redeems the waiting winners if any
        is due; returns how many were sent for redemption."""
        block, round_ = self.broker.block_number(), self.broker.current_round()
        self.confirm(block)
        self.store.prune(block, self.clock())
        pending = self.store.pending()
        if not pending or not due(pending, current_block=block, current_round=round_,
                                  validity_rounds=self.validity_rounds, batch_size=self.batch_size,
                                  max_wait=self.max_wait, now=self.clock()):
            return 0
        redeemed = 0
        for start in range(0, len(pending), self.batch_size):
            redeemed += self._redeem(pending[start:start + self.batch_size])
        return redeemed

    def confirm(self, block: int) -> None:
        """A submitted winner is redeemed once the chain shows it used `confirmations` blocks
        deep; one the chain no longer shows used (its transaction was reorged out) waits to
        be redeemed again."""
        for w in self.store.submitted():
            if self.broker.is_used(w.ticket, block=max(0, block - self.confirmations)):
                self.store.mark_redeemed(w.hash)
            elif not self.broker.is_used(w.ticket):
                log.warning("ticket %s of job %s is no longer redeemed on chain (a reorg): "
                            "redeeming it again", w.hash, w.job_id)
                self.store.unsubmit(w.hash)

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
                self.store.mark_submitted(winner.hash, to_hex(r.tx_hash))
                log.info("redeemed ticket %s of job %s for %d wei in %s", winner.hash, winner.job_id,
                         winner.ticket.face_value, to_hex(r.tx_hash))
        for index, reason in refused:
            self._refused(winners[index], reason)
            by_hash.pop(winners[index].hash, None)
        for hash_hex in by_hash:  # sent, yet not redeemed: the contract skipped it; next time
            self.store.note_error(hash_hex, "skipped by batchRedeemWinningTickets")
        return len(redemptions)

    def _refused(self, winner: Winner, reason: str) -> None:
        if reason == USED:
            # Redeemed already, by us or by anyone: the contract paid the recipient either
            # way; confirmed at depth like our own redemptions.
            self.store.mark_submitted(winner.hash, None, reason)
            return
        log.warning("winning ticket %s of job %s not redeemable: %s", winner.hash, winner.job_id, reason)
        self.store.mark_failed(winner.hash, reason)
