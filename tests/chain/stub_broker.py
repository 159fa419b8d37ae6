"""chain.broker.Broker in memory, for unit tests of the redeemer's branches: a block height
and rounds that tests move, senders' funds, tickets used as of a block, a node that can be
made to fail, and reorgs that forget what was mined past a block."""

from __future__ import annotations

from chain.broker import BatchResult, Redemption, SenderInfo, TransactionReverted
from chain.redeemer import USED
from chain.ticket import ticket_hash


class StubBroker:
    def __init__(self, *, block: int = 100, round_length: int = 20, validity: int = 2):
        self.block = block
        self.round_length = round_length
        self.validity = validity
        self.funds: dict[str, SenderInfo] = {}
        self.used: dict[bytes, int] = {}  # ticket hash -> the block it was redeemed in
        self.refuse: dict[bytes, str] = {}  # ticket hash -> the contract's reason
        self.skip: set[bytes] = set()  # tickets batchRedeemWinningTickets skips silently
        self.down = False
        self.transactions = 0

    # ---- what tests do to it ----

    def fund(self, sender: str, deposit: int, reserve: int = 0) -> None:
        self.funds[sender] = SenderInfo(deposit, 0, reserve, 0)

    def mine(self, blocks: int = 1) -> None:
        self.block += blocks

    def reorg(self, to_block: int) -> None:
        """The chain goes back to `to_block`: what was redeemed after it is undone."""
        self.used = {h: b for h, b in self.used.items() if b <= to_block}
        self.block = to_block

    def _node(self) -> None:
        if self.down:
            raise ConnectionError("connection refused")

    # ---- the Broker protocol ----

    def block_number(self) -> int:
        self._node()
        return self.block

    def current_round(self) -> int:
        self._node()
        return self.block // self.round_length

    def ticket_validity_period(self) -> int:
        self._node()
        return self.validity

    def sender_info(self, sender: str | None = None) -> SenderInfo:
        self._node()
        return self.funds.get(sender, SenderInfo(0, 0, 0, 0))

    def redeem(self, ticket, sig, recipient_rand, *, max_gas_price=None):
        self._node()
        reason = self._refusal(ticket)
        if reason:
            raise TransactionReverted(reason)
        return self._mine([(ticket, recipient_rand)])

    def batch_redeem(self, items, *, max_gas_price=None) -> BatchResult:
        self._node()
        items = list(items)
        kept, refused = [], []
        for index, (ticket, _, rand) in enumerate(items):
            reason = self._refusal(ticket)
            if reason:
                refused.append((index, reason))
            elif ticket_hash(ticket) not in self.skip:
                kept.append((ticket, rand))
        if not kept:
            return BatchResult(None, [], refused)
        receipt = self._mine(kept)
        return BatchResult(receipt, self.redemptions(receipt), refused)

    def redemptions(self, receipt) -> list[Redemption]:
        return receipt["redemptions"]

    def is_used(self, ticket, block: int | None = None) -> bool:
        self._node()
        at = self.block if block is None else block
        mined = self.used.get(ticket_hash(ticket))
        return mined is not None and mined <= at

    def _refusal(self, ticket) -> str | None:
        if ticket_hash(ticket) in self.used:
            return USED
        if ticket.creation_round + self.validity <= self.block // self.round_length:
            return "ticket is expired"
        return self.refuse.get(ticket_hash(ticket))

    def _mine(self, tickets) -> dict:
        self.block += 1
        self.transactions += 1
        tx = self.transactions.to_bytes(32, "big")
        for ticket, _ in tickets:
            self.used[ticket_hash(ticket)] = self.block
        return {"redemptions": [Redemption(t, rand, tx, self.block) for t, rand in tickets]}
