"""The redeemer's redemptions, in-process against the stack's chain: a gas-price cap holds
them back, several go in one batch, a ticket the contract refuses is kept with the reason,
one redeemed already counts as paid, and a network error leaves it for the next try. A
redemption counts once the chain shows it used at the redeemer's depth (0 here)."""

import pytest
from eth_account import Account

from chain.broker import TicketBroker
from devstack.devchain import DEV_PRIVATE_KEYS, DEV_ROUND_LENGTH, DEV_TICKET_VALIDITY_PERIOD, fund_gateway, mine
from chain.recipient import Recipient
from chain.redeemer import Redeemer
from chain.sender import TicketSender
from workers.redeemer_store import OperatorStore
from devstack.chain import DEV_DEPOSIT, DEV_RESERVE, DEV_TICKET_EV

SECRET = b"redeem test operator secret 32b!"
GAS_KEY = DEV_PRIVATE_KEYS[3]


@pytest.fixture
def redeemer(stack, tmp_path):
    operator = Recipient(Account.create().address, SECRET, DEV_TICKET_EV, 1000)
    broker = TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"], GAS_KEY)
    # Nothing is due on its own here; max_wait 0 makes everything due at once.
    return Redeemer(operator, broker, OperatorStore(tmp_path / "operator.sqlite3"), max_gas_price=1,
                    batch_size=100, max_wait=0)


@pytest.fixture(scope="module")
def sender(stack) -> str:
    """A sender of its own, funded: the gateway's ledger knows nothing of these tickets, so
    they must not be the gateway's (its ledger is checked against the chain)."""
    key = Account.create().key.hex()
    fund_gateway(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"], key,
                 deposit=DEV_DEPOSIT, reserve=DEV_RESERVE)
    return key


def pay(sender, redeemer, count: int) -> None:
    broker = redeemer.broker
    round_, block_hash = broker.ticket_round()
    params = Recipient(redeemer.recipient.address, SECRET, DEV_TICKET_EV).ticket_params(
        Account.from_key(sender).address, gas_price=broker.gas_price(),
        current_block=broker.block_number(), creation_round=round_, creation_round_block_hash=block_hash)
    result = redeemer.receive("job", TicketSender(sender).issue(params, count).to_dict())
    assert result["winners"] == count


def statuses(redeemer) -> list[tuple]:
    return [(w["status"], w["reason"]) for w in redeemer.store.winners()]


def test_gas_cap_then_one_batch(stack, redeemer, sender):
    pay(sender, redeemer, 3)
    assert redeemer.redeem_due() == 0  # gas costs more than 1 wei: they wait
    assert statuses(redeemer) == [("pending", None)] * 3
    redeemer.max_gas_price = redeemer.broker.gas_price() * 10
    balance = redeemer.broker.w3.eth.get_balance(redeemer.recipient.address)
    assert redeemer.redeem_due() == 3
    assert statuses(redeemer) == [("submitted", None)] * 3  # until the chain shows them deep enough
    assert len({w["tx_hash"] for w in redeemer.store.winners()}) == 1
    assert redeemer.broker.w3.eth.get_balance(redeemer.recipient.address) - balance == 3 * DEV_TICKET_EV
    assert redeemer.redeem_due() == 0  # nothing twice
    assert statuses(redeemer) == [("redeemed", None)] * 3


def test_a_refused_redemption_keeps_the_ticket_with_the_reason(stack, redeemer, sender):
    redeemer.max_gas_price = None
    pay(sender, redeemer, 1)
    mine(stack.env["CHAIN_RPC_URL"], DEV_ROUND_LENGTH * (DEV_TICKET_VALIDITY_PERIOD + 1))
    assert redeemer.redeem_due() == 0
    assert statuses(redeemer) == [("failed", "ticket is expired")]


def test_redeemed_elsewhere_counts_as_paid_and_network_errors_wait(stack, redeemer, sender):
    redeemer.max_gas_price = None
    pay(sender, redeemer, 1)
    [winner] = redeemer.store.pending()

    def unreachable(*args, **kwargs):
        raise ConnectionError("connection refused")

    live = redeemer.broker.redeem
    redeemer.broker.redeem = unreachable
    assert redeemer.redeem_due() == 0
    assert statuses(redeemer) == [("pending", None)]
    redeemer.broker.redeem = live

    other = TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"], DEV_PRIVATE_KEYS[4])
    other.redeem(winner.ticket, winner.sig, winner.recipient_rand)  # anyone may; the recipient is paid
    assert redeemer.redeem_due() == 0
    assert statuses(redeemer) == [("submitted", "ticket is used")]
    redeemer.redeem_due()
    assert statuses(redeemer) == [("redeemed", "ticket is used")]
