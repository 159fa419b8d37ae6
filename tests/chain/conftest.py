"""Chain fixtures: one anvil for the session, fresh contracts per test that wants them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import missing_tool
from eth_account import Account

from devstack import devchain
from chain.recipient import new_ticket_params
from chain.sender import TicketSender
from chain.validator import TicketValidator
from chain.pricing import MAX_WIN_PROB

VECTORS_PATH = Path(__file__).with_name("pm-vectors.json")  # copied from shared/reference
GATEWAY_KEY = devchain.DEV_PRIVATE_KEYS[1]
OPERATOR_KEY = devchain.DEV_PRIVATE_KEYS[2]
REDEEMER_KEY = devchain.DEV_PRIVATE_KEYS[3]  # a third party, so the operator pays no gas
OPERATOR_SECRET = b"operator secret for tests, 32 b!"
ETHER = devchain.ETHER


@pytest.fixture(scope="session")
def vectors() -> dict:
    return json.loads(VECTORS_PATH.read_text())


@pytest.fixture(scope="session")
def anvil():
    try:
        devchain.anvil_path()
    except devchain.DevChainError as exc:
        missing_tool(f"no anvil: {exc}")
    with devchain.start_anvil() as node:
        yield node


@pytest.fixture
def broker(anvil):
    """Fresh contracts, so no test sees another's deposits or used tickets. Client: the deployer."""
    return devchain.deploy_dev_contracts(anvil.url)


@pytest.fixture
def gateway_broker(anvil, broker):
    """The gateway's broker client (not the HTTP gateway of tests/conftest.py), with a 1 ETH
    deposit and a 1 ETH reserve."""
    return devchain.fund_gateway(anvil.url, broker.address, GATEWAY_KEY, deposit=ETHER, reserve=ETHER)


@pytest.fixture
def redeemer(anvil, broker):
    return devchain.TicketBroker(anvil.url, broker.address, REDEEMER_KEY)


@pytest.fixture
def operator_address() -> str:
    return Account.from_key(OPERATOR_KEY).address


@pytest.fixture
def gateway_address() -> str:
    return Account.from_key(GATEWAY_KEY).address


@pytest.fixture
def make_params(broker, operator_address, gateway_address):
    """Params for the gateway from the operator, in the chain's current round; they always win
    unless told otherwise."""

    def make(face_value: int = 10**15, win_prob: int = MAX_WIN_PROB, **overrides):
        creation_round, block_hash = broker.ticket_round()
        fields = dict(
            recipient=operator_address,
            sender=gateway_address,
            face_value=face_value,
            win_prob=win_prob,
            expiration_block=broker.block_number() + 1_000,
            creation_round=creation_round,
            creation_round_block_hash=block_hash,
        )
        fields.update(overrides)
        return new_ticket_params(OPERATOR_SECRET, **fields)

    return make


@pytest.fixture
def sign_tickets(operator_address):
    """Sign `count` tickets on `params` as the gateway; returns (ticket, sig, recipient_rand)
    triples checked by the operator's validator, ready to redeem."""
    validator = TicketValidator(operator_address, OPERATOR_SECRET)
    sender = TicketSender(GATEWAY_KEY)

    def sign(params, count: int = 1):
        payment = sender.issue(params, count)
        verdicts = validator.validate_payment(payment, current_block=0)
        assert all(v.ok for v in verdicts), [v.rejection for v in verdicts]
        return [(v.ticket, v.sig, v.recipient_rand) for v in verdicts]

    return sign
