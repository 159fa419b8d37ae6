"""The gateway's chain commands: flask --app app chain deploy | fund | status | unlock | withdraw
| reconcile.

They act for the gateway's key (GATEWAY_PRIVATE_KEY or GATEWAY_PRIVATE_KEY_FILE) on the
chain at CHAIN_RPC_URL and the TicketBroker at TICKET_BROKER_ADDRESS.
"""

from decimal import Decimal, InvalidOperation

import click
from flask.cli import AppGroup

from app import extensions as ext
from app import reconcile as reconciling
from app.settings import gateway_key
from chain.broker import TicketBroker
from tasks.settings import Env

ETHER = 10**18

chain = AppGroup("chain", help="The gateway's deposit and reserve on the TicketBroker.")


class Ether(click.ParamType):
    """An amount in ETH ("0.5"), or in wei with a suffix ("1000wei"); returns wei."""

    name = "eth"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        try:
            wei = int(text[:-3]) if text.endswith("wei") else Decimal(text) * ETHER
        except (InvalidOperation, ValueError):
            self.fail(f"{value!r} is not an amount of ETH", param, ctx)
        if wei < 0 or wei != int(wei):
            self.fail(f"{value!r} is not a whole number of wei", param, ctx)
        return int(wei)


def _rpc_url() -> str:
    url = Env().str("CHAIN_RPC_URL")
    if not url:
        raise click.UsageError("set CHAIN_RPC_URL")
    return url


def _gateway_broker(read_only: bool = False) -> TicketBroker:
    chain = ext.settings().chain
    if chain is None:
        raise click.UsageError("set CHAIN_RPC_URL and TICKET_BROKER_ADDRESS "
                               "(flask --app app chain deploy prints it)")
    key = gateway_key()
    if key is None and not read_only:
        raise click.UsageError("set GATEWAY_PRIVATE_KEY or GATEWAY_PRIVATE_KEY_FILE")
    return TicketBroker(chain.rpc_url, chain.broker_address, key)


def _eth(wei: int) -> str:
    return f"{Decimal(wei) / ETHER:f} ETH"


@chain.command("deploy")
@click.option("--round-length", default=5760, show_default=True, help="blocks per round")
@click.option("--unlock-period", default=2, show_default=True, help="rounds from unlock to withdraw")
@click.option("--ticket-validity-period", default=2, show_default=True, help="rounds a ticket stays redeemable")
def deploy(round_length: int, unlock_period: int, ticket_validity_period: int):
    """Deploy a RoundsManager and a TicketBroker (key: CHAIN_DEPLOYER_KEY, else the gateway's)."""
    key = Env().secret("CHAIN_DEPLOYER_KEY") or gateway_key()
    if key is None:
        raise click.UsageError("set CHAIN_DEPLOYER_KEY or GATEWAY_PRIVATE_KEY")
    broker = TicketBroker.deploy(_rpc_url(), key, round_length=round_length, unlock_period=unlock_period,
                                 ticket_validity_period=ticket_validity_period)
    click.echo(f"TICKET_BROKER_ADDRESS={broker.address}")
    click.echo(f"ROUNDS_MANAGER_ADDRESS={broker.rounds_address}")


@chain.command("fund")
@click.option("--deposit", type=Ether(), default=0, help="ETH added to the deposit (pays winning tickets)")
@click.option("--reserve", type=Ether(), default=0, help="ETH added to the reserve (pays when the deposit runs out)")
def fund(deposit: int, reserve: int):
    """Add to the gateway's deposit and reserve; funding also cancels an unlock."""
    if deposit <= 0 and reserve <= 0:
        raise click.UsageError("give --deposit and/or --reserve")
    broker = _gateway_broker()
    receipt = broker.fund_deposit_and_reserve(deposit, reserve)
    click.echo(f"funded {_eth(deposit)} deposit, {_eth(reserve)} reserve in {receipt['transactionHash'].hex()}")
    _print_status(broker, broker.account)


@chain.command("status")
def status():
    """The gateway's balance, deposit, reserve and unlock state, and the chain's round."""
    broker = _gateway_broker(read_only=True)
    _print_status(broker, broker.account or ext.settings().gateway_address)


@chain.command("unlock")
def unlock():
    """Start the unlock period, after which `withdraw` returns the deposit and reserve."""
    broker = _gateway_broker()
    broker.unlock()
    _print_status(broker, broker.account)


@chain.command("withdraw")
def withdraw():
    """Withdraw the deposit and reserve once the unlock period has passed."""
    broker = _gateway_broker()
    receipt = broker.withdraw()
    for event in broker.events(receipt, "Withdrawal"):
        click.echo(f"withdrew {_eth(event['deposit'])} deposit, {_eth(event['reserve'])} reserve")
    _print_status(broker, broker.account)


def _print_status(broker: TicketBroker, sender: str | None) -> None:
    if sender is None:
        raise click.UsageError("set GATEWAY_PRIVATE_KEY or GATEWAY_ADDRESS")
    info = broker.sender_info(sender)
    current = broker.current_round()
    if info.withdraw_round == 0:
        unlock_state = "locked (tickets are honoured)"
    elif info.withdraw_round > current:
        unlock_state = f"unlocking, withdraw from round {info.withdraw_round}"
    else:
        unlock_state = "unlocked: withdraw now"
    click.echo(f"gateway   {sender}  balance {_eth(broker.w3.eth.get_balance(sender))}")
    click.echo(f"deposit   {_eth(info.deposit)}")
    click.echo(f"reserve   {_eth(info.reserve)}")
    click.echo(f"state     {unlock_state}")
    click.echo(f"chain     block {broker.block_number()}, round {current}, broker {broker.address}")


@chain.command("reconcile")
def reconcile():
    """Check that the ledger and the chain agree for the gateway's address: every ticket
    redeemed on chain recorded once and every recorded one redeemed there, none voided and
    redeemed, every debt paid or owed. Lists the differences and exits 1 when there are."""
    broker = _gateway_broker(read_only=True)
    settings = ext.settings()
    sender = broker.account or settings.gateway_address
    if sender is None:
        raise click.UsageError("set GATEWAY_PRIVATE_KEY or GATEWAY_ADDRESS")
    with ext.new_session() as session:
        found = reconciling.differences(session, broker, sender, settings.watcher_from_block)
    for line in found:
        click.echo(line)
    if found:
        raise click.exceptions.Exit(1)
    click.echo(f"ledger and chain agree for {sender}")
