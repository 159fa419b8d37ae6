"""Round initialization, as go-livepeer's `-initializeRound`: pins each round's block hash in
the RoundsManager before the round's first block leaves the EVM's 256-block window.

A ticket names its creation round and that round's block hash, and the TicketBroker checks
the pair when the ticket is redeemed. Until someone calls initializeRound, the contract
reads the hash from the EVM, which forgets a block 256 blocks later (and a dev chain
restarted from its saved state may not know it at all). A winning ticket of a round nobody
pinned then can never be redeemed: its operator loses what it won. Livepeer's network has
orchestrators that initialize rounds; an operator on a chain without one runs this, in its
redeemer (REDEEM_INITIALIZE_ROUNDS), and pays the gas.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .broker import TransactionReverted

log = logging.getLogger(__name__)


class Rounds(Protocol):
    """What the initializer needs of the chain; TicketBroker is the real one."""

    def block_number(self) -> int: ...
    def current_round(self) -> int: ...
    def current_round_start_block(self) -> int: ...
    def current_round_initialized(self) -> bool: ...
    def initialize_round(self, *, max_gas_price: int | None = None): ...


class RoundInitializer:
    def __init__(self, rounds: Rounds, max_gas_price: int | None = None):
        self.rounds = rounds
        self.max_gas_price = max_gas_price
        self.lost: int | None = None  # a round whose first block left the window unpinned

    def initialize_due(self) -> int | None:
        """Pins the current round's block hash when nobody has; returns the round pinned,
        or None when there was nothing to do (already pinned; its first block is the newest,
        whose hash the EVM does not give yet; or it is too late for this round)."""
        if self.rounds.current_round_initialized():
            return None
        round_ = self.rounds.current_round()
        if round_ == self.lost or self.rounds.block_number() <= self.rounds.current_round_start_block():
            return None
        try:
            self.rounds.initialize_round(max_gas_price=self.max_gas_price)
        except TransactionReverted as exc:
            if self.rounds.current_round_initialized():
                return None  # another operator pinned it first
            # Its first block is out of the EVM's window: no one can pin this round any more
            # (nor make params on it); the next round is pinned in time.
            log.warning("round %d cannot be initialized (%s); its tickets cannot be redeemed", round_, exc)
            self.lost = round_
            return None
        log.info("round %d initialized: its block hash is pinned", round_)
        return round_
