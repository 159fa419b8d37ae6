"""The dev chain for `make run` and the tests: anvil, the contracts, a funded gateway, and
the environment that points every process at them. Dev keys only (anvil's public mnemonic),
never on a real chain."""

import os
from pathlib import Path

from chain.broker import TicketBroker
from chain.signature import address_of
from devstack.devchain import (
    DEV_PRIVATE_KEYS, ETHER, Anvil, deploy_dev_contracts, fund_gateway, load_or_deploy, start_anvil,
)

GATEWAY_KEY = DEV_PRIVATE_KEYS[1]
OPERATOR_KEY = DEV_PRIVATE_KEYS[2]
# Who the test stack's own operator is registered as (its workers are not paid).
STACK_OPERATOR_ADDRESS = address_of(OPERATOR_KEY)
# At dev gas prices (1-2 gwei) a redemption costs under 3e14 wei, so a ticket of this EV has
# a face value equal to its EV and always wins: the demo and the tests see every payout.
DEV_TICKET_EV = 10**17
DEV_MAX_TICKET_EV = 10 * DEV_TICKET_EV
DEV_DEPOSIT = DEV_RESERVE = 100 * ETHER


def gateway_env(rpc_url: str, broker_address: str) -> dict:
    """What the gateway's processes need: the chain, and GATEWAY_KEY, which pays. The dev
    chain has no reorgs worth waiting for (read at depth 0), and its tickets are worth more
    than a real one's (the EV ceiling is raised to match DEV_TICKET_EV)."""
    return {
        "CHAIN_RPC_URL": rpc_url,
        "TICKET_BROKER_ADDRESS": broker_address,
        "GATEWAY_PRIVATE_KEY": GATEWAY_KEY,
        "WATCHER_CONFIRMATIONS": "0",
        "TICKET_MAX_EV": str(DEV_MAX_TICKET_EV),
    }


def chain_env(rpc_url: str, broker_address: str, operator_secret: str) -> dict:
    """What every process needs: the gateway pays with GATEWAY_KEY, workers and the redeemer
    are paid as OPERATOR_KEY's address."""
    return {
        **gateway_env(rpc_url, broker_address),
        "OPERATOR_PRIVATE_KEY": OPERATOR_KEY,
        "OPERATOR_ADDRESS": address_of(OPERATOR_KEY),
        "OPERATOR_SECRET": operator_secret,
        "OPERATOR_TICKET_EV": str(DEV_TICKET_EV),
        "REDEEM_CONFIRMATIONS": "0",
        # A winner is redeemed within seconds rather than in a batch of 20 or after an hour,
        # so the demo's payouts show while one watches.
        "REDEEM_MAX_WAIT_SECONDS": "10",
        # Nobody else initializes the dev chain's rounds: without it, a winner is lost once
        # its round's first block is 256 blocks old, or when anvil restarts from its state.
        "REDEEM_INITIALIZE_ROUNDS": "1",
    }


def fund_if_low(rpc_url: str, broker_address: str) -> None:
    """Tops the gateway's deposit and reserve up when less than half is left."""
    info = TicketBroker(rpc_url, broker_address).sender_info(address_of(GATEWAY_KEY))
    if info.deposit < DEV_DEPOSIT // 2 or info.reserve < DEV_RESERVE // 2:
        fund_gateway(rpc_url, broker_address, GATEWAY_KEY, deposit=DEV_DEPOSIT, reserve=DEV_RESERVE)


def chain_files(base: Path) -> dict:
    """Where the test chain logs, and keeps its state so that a fault test can stop the
    node and start it again (restart_test_chain) with nothing lost."""
    return {"log_path": base / "anvil.log", "state_path": base / "anvil-state.json"}


def start_test_chain(base: Path) -> tuple[Anvil, dict]:
    """A fresh anvil with the contracts and a funded gateway, for one test run. Only the
    gateway's side: the tests that pay an operator bring its own (tests/payments)."""
    anvil = start_anvil(**chain_files(base))
    try:
        broker = deploy_dev_contracts(anvil.url)
        fund_gateway(anvil.url, broker.address, GATEWAY_KEY, deposit=DEV_DEPOSIT,
                     reserve=DEV_RESERVE)
    except BaseException:
        anvil.stop()
        raise
    return anvil, gateway_env(anvil.url, broker.address)


def restart_test_chain(base: Path, stopped: Anvil) -> Anvil:
    """The chain of start_test_chain, stopped, started again on its port from its state."""
    return start_anvil(stopped.port, **chain_files(base))


def run_chain(run_dir: Path, operator_secret: str) -> tuple[Anvil | None, dict]:
    """For `make run`: the chain at CHAIN_RPC_URL when set (its contract, keys and secret come
    from the environment too), else anvil keeping its state in run_dir, deployed once and
    funded when low."""
    if os.environ.get("CHAIN_RPC_URL"):
        return None, {}
    anvil = start_anvil(int(os.environ.get("CHAIN_PORT", "8545")), state_path=run_dir / "state.json",
                        log_path=run_dir / "anvil.log")
    try:
        info = load_or_deploy(anvil.url, run_dir / "chain.json")
        fund_if_low(anvil.url, info["ticket_broker"])
    except Exception:
        anvil.stop()
        raise
    return anvil, chain_env(anvil.url, info["ticket_broker"], operator_secret)
