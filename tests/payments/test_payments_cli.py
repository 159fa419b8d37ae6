"""flask --app app chain deploy | fund | status | unlock | withdraw | reconcile, against the
stack's chain."""

import pytest
from eth_account import Account
from sqlalchemy import delete

from app import watcher
from app.store import ledger
from app.store.db import transaction

from chain.broker import TicketBroker
from devstack.devchain import DEV_PRIVATE_KEYS, DEV_UNLOCK_PERIOD, DEV_ROUND_LENGTH, mine

OTHER_GATEWAY_KEY = DEV_PRIVATE_KEYS[4]  # so unlocking leaves the stack's gateway funded


@pytest.fixture
def chain_cli(app):
    runner = app.test_cli_runner()

    def run(*args, ok: bool = True):
        result = runner.invoke(args=["chain", *args])
        assert (result.exit_code == 0) == ok, result.output + repr(result.exception)
        return result.output

    return run


def test_status_shows_the_gateways_funds(chain_cli, stack):
    out = chain_cli("status")
    assert Account.from_key(stack.env["GATEWAY_PRIVATE_KEY"]).address in out
    assert "deposit" in out and "reserve" in out and "locked" in out


def test_fund_unlock_withdraw(chain_cli, stack, monkeypatch):
    monkeypatch.setenv("GATEWAY_PRIVATE_KEY", OTHER_GATEWAY_KEY)
    address = Account.from_key(OTHER_GATEWAY_KEY).address
    broker = TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"])
    before = broker.sender_info(address)

    out = chain_cli("fund", "--deposit", "1.5", "--reserve", "500wei")
    assert f"gateway   {address}" in out
    funded = broker.sender_info(address)
    assert (funded.deposit - before.deposit, funded.reserve - before.reserve) == (15 * 10**17, 500)

    assert "unlocking" in chain_cli("unlock")
    chain_cli("withdraw", ok=False)  # still locked
    mine(stack.env["CHAIN_RPC_URL"], DEV_ROUND_LENGTH * DEV_UNLOCK_PERIOD)
    out = chain_cli("withdraw")
    assert "withdrew" in out and broker.sender_info(address).deposit == 0

    chain_cli("fund", ok=False)  # nothing to fund with
    chain_cli("fund", "--deposit", "lots", ok=False)


def test_deploy_prints_the_new_contracts(chain_cli, stack):
    out = chain_cli("deploy", "--round-length", "10")
    address = dict(line.split("=") for line in out.split())["TICKET_BROKER_ADDRESS"]
    broker = TicketBroker(stack.env["CHAIN_RPC_URL"], address)
    assert broker.rounds.functions.roundLength().call() == 10


def test_reconcile_agrees_then_lists_what_differs(chain_cli, stack, sessions):
    broker = TicketBroker(stack.env["CHAIN_RPC_URL"], stack.env["TICKET_BROKER_ADDRESS"])
    gateway = Account.from_key(stack.env["GATEWAY_PRIVATE_KEY"]).address
    watcher.reconcile(sessions, broker, gateway)  # the watcher has read the chain to its head
    assert f"ledger and chain agree for {gateway}" in chain_cli("reconcile")

    phantom = "0x" + "ab" * 32  # a redemption the chain never saw
    with transaction(sessions) as session:
        session.add(ledger.RedemptionRecord(ticket_hash=phantom, tx_hash="0x" + "cd" * 32, block_number=1,
                                            sender=gateway, recipient=gateway, face_value=1, sender_nonce=1))
    try:
        out = chain_cli("reconcile", ok=False)
        assert f"ticket {phantom} redeemed in the ledger" in out and "not on chain" in out
        assert f"ticket {phantom} redeemed on chain was never issued by the gateway" in out
    finally:
        with transaction(sessions) as session:
            session.execute(delete(ledger.RedemptionRecord).where(ledger.RedemptionRecord.ticket_hash == phantom))
