"""A web3.py client for the TicketBroker and its RoundsManager.

Construct it from an RPC URL (or a Web3), the broker's address and, to send transactions, a private
key. Every transaction is simulated first (gas estimation), so a ticket the contract would refuse
raises TransactionReverted with the contract's reason and costs no gas.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Protocol

from eth_account import Account
from web3 import Web3
from web3.exceptions import BlockNotFound, ContractLogicError, TimeExhausted
from web3.logs import DISCARD

from . import artifacts
from .codec import ZERO_HASH, to_address, to_bytes32
from .recipient import recipient_rand_hash
from .ticket import Ticket, aux_data, ticket_hash

GAS_MARGIN = 1.2  # estimates are exact for these calls, but a state change between estimate and
# inclusion (a round boundary, a deposit running dry) can need a little more
# What batchRedeemWinningTickets adds per ticket over a lone redemption (ABI re-encoding, the
# self-call); generous, since unused gas is refunded.
BATCH_GAS_PER_TICKET = 30_000
DEFAULT_TX_TIMEOUT = 60
# What a caller sees when the node is away or slow (requests' errors are OSErrors), or a
# transaction was not mined in time: worth trying again later, unlike a revert.
NETWORK_ERRORS = (OSError, TimeExhausted)


@dataclass(frozen=True)
class ChainEndpoint:
    """Where the chain and the TicketBroker are."""

    rpc_url: str
    broker_address: str

    @classmethod
    def configured(cls, rpc_url: str, broker_address: str) -> "ChainEndpoint | None":
        """None when either is missing: payments are off, jobs still run."""
        if not rpc_url or not broker_address:
            return None
        return cls(rpc_url, to_address(broker_address))


class BrokerError(RuntimeError):
    pass


class TransactionReverted(BrokerError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class GasPriceTooHigh(BrokerError):
    """The chain's gas price is above the caller's cap; try again later."""


@dataclass(frozen=True)
class SenderInfo:
    deposit: int
    withdraw_round: int
    reserve: int  # fundsRemaining
    reserve_claimed_in_current_round: int


@dataclass(frozen=True)
class BatchResult:
    receipt: object | None  # None when no ticket was worth sending
    redeemed: list["Redemption"]
    refused: list[tuple[int, str]]  # (index in the batch, the contract's reason), found beforehand


@dataclass(frozen=True)
class Redemption:
    """A WinningTicketRedeemed event, with the ticket rebuilt from it."""

    ticket: Ticket
    recipient_rand: int
    tx_hash: bytes
    block_number: int


def ticket_tuple(ticket: Ticket) -> tuple:
    """The Ticket struct as web3 encodes it."""
    return (
        ticket.recipient,
        ticket.sender,
        ticket.face_value,
        ticket.win_prob,
        ticket.sender_nonce,
        ticket.recipient_rand_hash,
        aux_data(ticket),
    )


def connect(rpc: str | Web3, timeout: float = 30) -> Web3:
    if isinstance(rpc, Web3):
        return rpc
    return Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": timeout}))


class Broker(Protocol):
    """What the redeemer needs of the chain; TicketBroker is the real one, and unit tests
    use a stub."""

    def block_number(self) -> int: ...
    def current_round(self) -> int: ...
    def ticket_validity_period(self) -> int: ...
    def sender_info(self, sender: str | None = None) -> SenderInfo: ...
    def redeem(self, ticket: Ticket, sig: bytes, recipient_rand: int, *,
               max_gas_price: int | None = None): ...
    def batch_redeem(self, items: Iterable[tuple[Ticket, bytes, int]], *,
                     max_gas_price: int | None = None) -> "BatchResult": ...
    def redemptions(self, receipt) -> list["Redemption"]: ...
    def is_used(self, ticket: Ticket, block: int | None = None) -> bool: ...


class TicketBroker:
    def __init__(
        self,
        rpc: str | Web3,
        address: str,
        private_key=None,
        *,
        rounds_address: str | None = None,
        tx_timeout: float = DEFAULT_TX_TIMEOUT,
    ):
        self.w3 = connect(rpc)
        self.contract = self.w3.eth.contract(address=to_address(address), abi=artifacts.abi("TicketBroker"))
        rounds_address = rounds_address or self.contract.functions.roundsManager().call()
        self.rounds = self.w3.eth.contract(address=to_address(rounds_address), abi=artifacts.abi("RoundsManager"))
        self._account = Account.from_key(private_key) if private_key is not None else None
        self.tx_timeout = tx_timeout
        self._send_lock = threading.Lock()  # one pending nonce at a time per client

    # ---- deployment ----

    @classmethod
    def deploy(
        cls,
        rpc: str | Web3,
        private_key,
        *,
        round_length: int,
        unlock_period: int,
        ticket_validity_period: int,
    ) -> "TicketBroker":
        """Deploy a RoundsManager and a TicketBroker that reads it; the key's account owns both."""
        w3 = connect(rpc)
        rounds = _deploy(w3, private_key, "RoundsManager", round_length)
        broker = _deploy(w3, private_key, "TicketBroker", rounds, unlock_period, ticket_validity_period)
        return cls(w3, broker, private_key, rounds_address=rounds)

    @property
    def address(self) -> str:
        return self.contract.address

    @property
    def rounds_address(self) -> str:
        return self.rounds.address

    @property
    def account(self) -> str | None:
        return self._account.address if self._account else None

    # ---- sender funds ----

    def fund_deposit(self, amount: int):
        return self._transact(self.contract.functions.fundDeposit(), value=amount)

    def fund_reserve(self, amount: int):
        return self._transact(self.contract.functions.fundReserve(), value=amount)

    def fund_deposit_and_reserve(self, deposit: int, reserve: int):
        fn = self.contract.functions.fundDepositAndReserve(deposit, reserve)
        return self._transact(fn, value=deposit + reserve)

    def unlock(self):
        return self._transact(self.contract.functions.unlock())

    def cancel_unlock(self):
        return self._transact(self.contract.functions.cancelUnlock())

    def withdraw(self):
        return self._transact(self.contract.functions.withdraw())

    def sender_info(self, sender: str | None = None) -> SenderInfo:
        address = to_address(sender) if sender else self._require_account()
        sender_struct, reserve = self.contract.functions.getSenderInfo(address).call()
        return SenderInfo(sender_struct[0], sender_struct[1], reserve[0], reserve[1])

    # ---- redemption ----

    def redeem(self, ticket: Ticket, sig: bytes, recipient_rand: int, *, max_gas_price: int | None = None):
        return self._transact(self._redeem_call(ticket, sig, recipient_rand), max_gas_price=max_gas_price)

    def batch_redeem(
        self, items: Iterable[tuple[Ticket, bytes, int]], *, max_gas_price: int | None = None
    ) -> BatchResult:
        """Redeem many tickets in one transaction. The contract silently skips tickets that fail,
        and gas estimation cannot see those failures (a skipped ticket still 'succeeds'), so each
        ticket is first simulated alone: refused ones are left out and reported, and the gas
        limit is the sum of the lone estimates."""
        items = list(items)
        kept, refused, gas = [], [], 0
        for index, (ticket, sig, rand) in enumerate(items):
            try:
                gas += _estimate(self._redeem_call(ticket, sig, rand), {"from": self._require_account(), "value": 0})
                kept.append((ticket, sig, rand))
            except TransactionReverted as exc:
                refused.append((index, exc.reason))
        if not kept:
            return BatchResult(None, [], refused)
        fn = self.contract.functions.batchRedeemWinningTickets(
            [ticket_tuple(t) for t, _, _ in kept], [bytes(s) for _, s, _ in kept], [r for _, _, r in kept]
        )
        receipt = self._transact(fn, max_gas_price=max_gas_price, gas=gas + BATCH_GAS_PER_TICKET * len(kept))
        return BatchResult(receipt, self.redemptions(receipt), refused)

    def _redeem_call(self, ticket: Ticket, sig: bytes, recipient_rand: int):
        return self.contract.functions.redeemWinningTicket(ticket_tuple(ticket), bytes(sig), recipient_rand)

    def is_used(self, ticket: Ticket, block: int | None = None) -> bool:
        """Whether the ticket was redeemed, as of `block` (default: the latest)."""
        call = self.contract.functions.usedTickets(ticket_hash(ticket))
        return call.call(block_identifier=block if block is not None else "latest")

    def onchain_ticket_hash(self, ticket: Ticket) -> bytes:
        """The contract's getTicketHash: a check that off-chain and on-chain hashing agree."""
        return bytes(self.contract.functions.getTicketHash(ticket_tuple(ticket)).call())

    def redemptions(self, receipt) -> list[Redemption]:
        events = self.contract.events.WinningTicketRedeemed().process_receipt(receipt, errors=DISCARD)
        return [_redemption(e) for e in events]

    def redemption_events(
        self, from_block: int = 0, to_block="latest", *, recipient: str | None = None, sender: str | None = None
    ) -> list[Redemption]:
        filters = {}
        if recipient:
            filters["recipient"] = to_address(recipient)
        if sender:
            filters["sender"] = to_address(sender)
        events = self.contract.events.WinningTicketRedeemed.get_logs(
            from_block=from_block, to_block=to_block, argument_filters=filters or None
        )
        return [_redemption(e) for e in events]

    def event_logs(self, name: str, from_block: int, to_block, **filters) -> list[dict]:
        """Each `name` event in the range: its arguments plus tx_hash, block_number and
        log_index, which together name it uniquely."""
        logs = getattr(self.contract.events, name).get_logs(
            from_block=from_block, to_block=to_block, argument_filters=filters or None
        )
        return [
            {**dict(e["args"]), "tx_hash": bytes(e["transactionHash"]), "block_number": e["blockNumber"],
             "log_index": e["logIndex"]}
            for e in logs
        ]

    def events(self, receipt, name: str) -> list[dict]:
        """The arguments of each `name` event in a receipt."""
        return [dict(e["args"]) for e in getattr(self.contract.events, name)().process_receipt(receipt, errors=DISCARD)]

    # ---- rounds ----

    def block_number(self) -> int:
        return self.w3.eth.block_number

    def current_round(self) -> int:
        return self.rounds.functions.currentRound().call()

    def block_hash_for_round(self, round_: int) -> bytes:
        return bytes(self.rounds.functions.blockHashForRound(round_).call())

    def ticket_round(self) -> tuple[int, bytes]:
        """(creation_round, creation_round_block_hash) for new ticket params: the current round,
        or the previous one while the current round's first block is the newest (its hash is not
        readable yet). BrokerError when neither has a hash (call initialize_round in time)."""
        current = self.current_round()
        for round_ in (current, current - 1):
            if round_ < 0:
                continue
            block_hash = self.block_hash_for_round(round_)
            if block_hash != ZERO_HASH:
                return round_, block_hash
        raise BrokerError(f"no block hash for round {current}; call initialize_round()")

    def round_length(self) -> int:
        return self.rounds.functions.roundLength().call()

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block `number` on the chain as it is now; None past the head."""
        try:
            return bytes(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def current_round_initialized(self) -> bool:
        return self.rounds.functions.currentRoundInitialized().call()

    def current_round_start_block(self) -> int:
        return self.rounds.functions.currentRoundStartBlock().call()

    def initialize_round(self, *, max_gas_price: int | None = None):
        return self._transact(self.rounds.functions.initializeRound(), max_gas_price=max_gas_price)

    def ticket_validity_period(self) -> int:
        return self.contract.functions.ticketValidityPeriod().call()

    def unlock_period(self) -> int:
        return self.contract.functions.unlockPeriod().call()

    # ---- transactions ----

    def gas_price(self) -> int:
        """What a transaction sent now pays per gas (base fee plus tip, or the legacy price)."""
        base = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            return self.w3.eth.gas_price
        return base + self.w3.eth.max_priority_fee

    def _require_account(self) -> str:
        if self._account is None:
            raise BrokerError("this client has no private key; it can only read")
        return self._account.address

    def _transact(self, fn, *, value: int = 0, max_gas_price: int | None = None, gas: int | None = None):
        """Simulate, sign and send; wait for the receipt. `gas` replaces the estimate."""
        sender = self._require_account()
        with self._send_lock:
            tx = {"from": sender, "value": value, "chainId": self.w3.eth.chain_id}
            tx.update(self._fees(max_gas_price))
            tx["gas"] = int((gas if gas is not None else _estimate(fn, tx)) * GAS_MARGIN)
            tx["nonce"] = self.w3.eth.get_transaction_count(sender, "pending")
            signed = self._account.sign_transaction(fn.build_transaction(tx))
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.tx_timeout)
        if receipt["status"] != 1:
            raise TransactionReverted(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def _fees(self, max_gas_price: int | None) -> dict:
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:  # a pre-London chain
            price = self.w3.eth.gas_price
            _check_cap(price, max_gas_price)
            return {"gasPrice": price}
        tip = self.w3.eth.max_priority_fee
        _check_cap(base + tip, max_gas_price)
        # Twice the base fee rides out a few full blocks; the cap, when given, still bounds it.
        max_fee = 2 * base + tip if max_gas_price is None else min(2 * base + tip, max_gas_price)
        return {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}


def _check_cap(price: int, cap: int | None) -> None:
    if cap is not None and price > cap:
        raise GasPriceTooHigh(f"gas price {price} wei is above the cap of {cap} wei")


def _estimate(fn, tx: dict) -> int:
    try:
        return fn.estimate_gas({"from": tx["from"], "value": tx["value"]})
    except ContractLogicError as exc:
        raise TransactionReverted(_revert_reason(exc)) from exc


def _revert_reason(exc: ContractLogicError) -> str:
    message = str(exc.message or exc)
    prefix = "execution reverted: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _deploy(w3: Web3, private_key, name: str, *args) -> str:
    account = Account.from_key(private_key)
    factory = w3.eth.contract(abi=artifacts.abi(name), bytecode=artifacts.bytecode(name))
    tx = factory.constructor(*args).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    )
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=DEFAULT_TX_TIMEOUT)
    if receipt["status"] != 1:
        raise BrokerError(f"deploying {name} failed in {tx_hash.hex()}")
    return receipt["contractAddress"]


def _redemption(event) -> Redemption:
    args = event["args"]
    aux = bytes(args["auxData"])
    creation_round, block_hash = (int.from_bytes(aux[:32], "big"), aux[32:]) if aux else (0, ZERO_HASH)
    ticket = Ticket(
        recipient=args["recipient"],
        sender=args["sender"],
        face_value=args["faceValue"],
        win_prob=args["winProb"],
        sender_nonce=args["senderNonce"],
        recipient_rand_hash=recipient_rand_hash(args["recipientRand"]),
        creation_round=creation_round,
        creation_round_block_hash=to_bytes32(block_hash),
    )
    return Redemption(ticket, args["recipientRand"], bytes(event["transactionHash"]), event["blockNumber"])
