"""Sender side: the bounds an operator's ticket params must keep before the gateway signs a
ticket against them, as go-livepeer's sender checks (validateTicketParams), and more.

An operator chooses its params, and a worker is not trusted: one that asks for a face value
of the whole deposit and a win probability of one would be paid the deposit by a single
ticket. So every ticket the gateway signs is bounded:

- its face value by a cap of the gateway's (MAX_FACE_VALUE) and by what the sender's funds
  can pay one recipient: the deposit plus the reserve's share per recipient, which on this
  TicketBroker is all of the reserve (claimableReserve: any recipient may claim it, there is
  no active set to divide it among; Livepeer's divides it by the active set's size, less
  what the recipient claimed this round);
- its EV by a multiple of what it pays for (the fees the operator is owed, which the
  settler sums: one ticket never pays far ahead of the work done);
- its EV (the operator's ask per ticket) by the gateway's floor and ceiling;
- its expiration block by the gateway's own view of the chain: not passed, and not further
  off than tickets stay redeemable;
- its creation round by the view: not ahead of the chain, still redeemable, and pinned to
  the round's block hash when the view knows it.

A refusal names its reason; the params are then worthless, never the job's payment.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction

from .codec import to_address
from .recipient import TicketParams


class Refusal(str, enum.Enum):
    WRONG_RECIPIENT = "wrong_recipient"  # params for someone other than the job's payee
    FACE_VALUE_CAP = "face_value_cap"
    FACE_VALUE_FUNDS = "face_value_over_funds"
    EV_OVER_FEE = "ev_over_fee"
    EV_TOO_LOW = "ev_too_low"
    EV_TOO_HIGH = "ev_too_high"
    EXPIRED = "params_expired"
    EXPIRY_TOO_FAR = "expiry_too_far"
    BAD_ROUND = "bad_creation_round"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class TicketBounds:
    max_face_value: int
    max_ev_fee_multiple: Fraction  # a ticket's EV at most this times the job's fee
    min_ticket_ev: int
    max_ticket_ev: int


@dataclass(frozen=True)
class SenderView:
    """What the gateway knows of the chain and of its own funds, as of one reading."""

    block: int
    round: int
    round_start_block: int  # the first block of `round`
    round_length: int
    validity_rounds: int  # the TicketBroker's ticketValidityPeriod
    deposit: int
    reserve: int  # claimable by one recipient (see above)
    round_hashes: dict[int, bytes] = field(default_factory=dict)  # round -> its block hash

    @property
    def funds_per_recipient(self) -> int:
        return self.deposit + self.reserve

    def round_start(self, round_: int) -> int:
        """The first block of a round, counted from the view's round (rounds keep their
        length across the few rounds the gateway looks at)."""
        return self.round_start_block + (round_ - self.round) * self.round_length

    def redeemable_until(self, creation_round: int) -> int:
        """The first block at which tickets of `creation_round` can no longer be redeemed."""
        return self.round_start(creation_round + self.validity_rounds)


def check(params: TicketParams, *, payee: str, fee: Fraction, view: SenderView,
          bounds: TicketBounds) -> Refusal | None:
    """None when tickets may be signed against `params` to pay `fee` (one job's, or the
    sum of several owed to the same payee); else why not. A zero fee signs no ticket and
    is not checked against the EV."""
    if params.recipient != to_address(payee):
        return Refusal.WRONG_RECIPIENT
    if params.face_value <= 0 or params.win_prob <= 0:
        return Refusal.EV_TOO_LOW
    if params.face_value > bounds.max_face_value:
        return Refusal.FACE_VALUE_CAP
    if params.face_value > view.funds_per_recipient:
        return Refusal.FACE_VALUE_FUNDS
    ev = params.ev
    if ev < bounds.min_ticket_ev:
        return Refusal.EV_TOO_LOW
    if ev > bounds.max_ticket_ev:
        return Refusal.EV_TOO_HIGH
    if fee > 0 and ev > bounds.max_ev_fee_multiple * fee:
        return Refusal.EV_OVER_FEE
    if params.expiration_block <= view.block:
        return Refusal.EXPIRED
    if params.expiration_block > view.block + view.validity_rounds * view.round_length:
        return Refusal.EXPIRY_TOO_FAR
    return _round_refusal(params, view)


def _round_refusal(params: TicketParams, view: SenderView) -> Refusal | None:
    created = params.creation_round
    if created > view.round or created + view.validity_rounds <= view.round:
        return Refusal.BAD_ROUND
    known = view.round_hashes.get(created)
    if known is not None and known != params.creation_round_block_hash:
        return Refusal.BAD_ROUND
    return None


def read_sender_view(broker, sender: str) -> SenderView:
    """A SenderView read from a TicketBroker (chain/broker.py) for the sender's address."""
    info = broker.sender_info(sender)
    round_ = broker.current_round()
    hashes = {}
    for r in (round_, round_ - 1):
        if r >= 0:
            block_hash = broker.block_hash_for_round(r)
            if any(block_hash):
                hashes[r] = block_hash
    # Past its unlock period the sender may withdraw at will, and the broker pays nothing.
    unlocked = info.withdraw_round and round_ >= info.withdraw_round
    return SenderView(
        block=broker.block_number(), round=round_, round_start_block=broker.current_round_start_block(),
        round_length=broker.round_length(), validity_rounds=broker.ticket_validity_period(),
        deposit=0 if unlocked else info.deposit, reserve=0 if unlocked else info.reserve,
        round_hashes=hashes)
