"""The operator's side of a job's payment: fresh ticket params for the gateway that sent the
job, made inside a worker (returned with the job's result) or by the redeemer (when the
gateway asks for params for a job that has none valid).

Built from the operator's settings (workers/settings.py: OPERATOR_ADDRESS or
OPERATOR_PRIVATE_KEY, OPERATOR_SECRET, OPERATOR_TICKET_EV, CHAIN_RPC_URL,
TICKET_BROKER_ADDRESS); a worker without them is simply not paid. The chain is read for the
block, round and gas price the params commit to, through a chain.view.CachedView: reads are
reused briefly and refreshed in the background while they are still good enough, so that a
job waits on the chain only when the worker has been idle for a while; and a chain that does
not answer costs the job nothing but its params (logged), never its result. The job is paid
all the same: its success carries the operator's address (`payee`), so the gateway owes it
and asks the redeemer for params later.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from chain.broker import ChainEndpoint, TicketBroker, connect
from chain.codec import to_address
from chain.recipient import Recipient
from chain.view import CachedView

log = logging.getLogger(__name__)
CHAIN_CACHE_SECONDS = 2.0  # blocks come every 0.25-12 s; params may lag a block or two
# A view older than the cache but younger than this still serves a job, while a background
# read replaces it; an older one is read again before the job's params are made.
CHAIN_STALE_SECONDS = 6.0
CHAIN_DOWN_SECONDS = 10.0  # after a failed read, no job waits on the chain for this long
RPC_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ChainView:
    block: int
    round: int
    round_block_hash: bytes
    gas_price: int


class OperatorPayments:
    def __init__(self, recipient: Recipient, chain: ChainEndpoint, clock=time.monotonic):
        self.recipient = recipient
        self.chain = chain
        self._broker: TicketBroker | None = None
        self._recipient: Recipient | None = None
        self.view = CachedView(self._read, fresh=CHAIN_CACHE_SECONDS, usable=CHAIN_STALE_SECONDS,
                               down=CHAIN_DOWN_SECONDS, clock=clock, name="ticket-params")

    @property
    def payee(self) -> str:
        """Who this operator's tickets pay: the address its successes are owed to."""
        return self.recipient.address

    def params_for(self, sender: str | None) -> dict | None:
        """TicketParams (as a dict) for `sender`, or None when they cannot be made now.
        Nothing here may fail the job whose result the params ride on."""
        if not sender:
            return None
        try:
            return self._params(sender)
        except Exception:
            log.exception("no ticket params for sender %r", sender)
            return None

    def _params(self, sender: str) -> dict | None:
        view = self.view.get()
        if view is None:
            log.warning("no ticket params for now: no recent view of the chain")
            return None
        params = self._recipient.ticket_params(
            to_address(sender), gas_price=view.gas_price, current_block=view.block,
            creation_round=view.round, creation_round_block_hash=view.round_block_hash,
        )
        return params.to_dict()

    def _read(self) -> ChainView:
        broker = self._connect()
        round_, block_hash = broker.ticket_round()
        return ChainView(broker.block_number(), round_, block_hash, broker.gas_price())

    def _connect(self) -> TicketBroker:
        if self._broker is None:
            broker = TicketBroker(connect(self.chain.rpc_url, RPC_TIMEOUT_SECONDS), self.chain.broker_address)
            # Params must expire before their tickets do on chain (creation round plus the
            # broker's validity period), so that a winner is never kept past redeeming; a
            # round is the shortest a ticket can have left.
            round_length = broker.rounds.functions.roundLength().call()
            self._recipient = replace(self.recipient, params_validity_blocks=min(
                self.recipient.params_validity_blocks, round_length))
            self._broker = broker
        return self._broker
