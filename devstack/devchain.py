"""The dev chain: anvil from node_modules, the dev contracts on it, and a funded gateway.

    python -m devstack.devchain up --dir .run/chain [--port 8545]   # start in the background,
                                                                   # deploy once, write chain.json
    python -m devstack.devchain down --dir .run/chain

The library functions serve the test fixtures and the `make run` bootstrap alike. Anvil's accounts
come from its public mnemonic: dev only, never on a real chain.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from eth_account import Account

from chain.broker import TicketBroker, connect

REPO_ROOT = Path(__file__).resolve().parents[1]
ANVIL_RELATIVE = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
CHAIN_ID = 31337
# The first accounts of anvil's default mnemonic ("test test ... junk"), each funded with
# 10,000 ETH at genesis.
DEV_PRIVATE_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
)
DEPLOYER_KEY = DEV_PRIVATE_KEYS[0]
# Short rounds so tests and demos see rounds pass; Livepeer's own values are in days.
DEV_ROUND_LENGTH = 20
DEV_UNLOCK_PERIOD = 2
DEV_TICKET_VALIDITY_PERIOD = 2
ETHER = 10**18


class DevChainError(RuntimeError):
    pass


def anvil_path(repo_root: Path = REPO_ROOT) -> Path:
    """The anvil binary: $ANVIL_BIN if set, else the one `npm ci` installs."""
    path = Path(os.environ.get("ANVIL_BIN") or repo_root / ANVIL_RELATIVE)
    if not path.is_file():
        raise DevChainError(f"anvil not found at {path}; run `npm ci` in {repo_root}")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_rpc(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevChainError(f"anvil exited with code {proc.returncode}")
        try:
            if requests.post(url, json=body, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise DevChainError(f"no JSON-RPC answer from {url} within {timeout}s")


@dataclass
class Anvil:
    """A running anvil; stop() ends it (and dumps its state when started with one)."""

    proc: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # anvil dumps --state on SIGINT
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "Anvil":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_anvil(
    port: int | None = None,
    *,
    state_path: Path | None = None,
    log_path: Path | None = None,
    timeout: float = 20.0,
    detach: bool = False,
) -> Anvil:
    """Start anvil on 127.0.0.1 and wait until it answers. With `state_path` the chain is loaded
    from and saved to that file; without, it lives in memory. `detach` puts it in its own session
    so it outlives the caller (for `up`)."""
    port = port or free_port()
    cmd = [str(anvil_path()), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(CHAIN_ID)]
    if state_path is not None:
        Path(state_path).parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--state", str(state_path), "--state-interval", "5"]  # survive a hard kill too
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=detach)
    finally:
        if log_path:
            log.close()
    anvil = Anvil(proc, port)
    try:
        wait_for_rpc(anvil.url, timeout, proc)
    except DevChainError:
        anvil.stop()
        raise
    return anvil


def mine(rpc, blocks: int = 1) -> None:
    """Mine empty blocks (anvil only), to move rounds along."""
    connect(rpc).provider.make_request("anvil_mine", [hex(blocks)])


def send_eth(rpc, to: str, amount: int, from_key=DEPLOYER_KEY):
    w3 = connect(rpc)
    account = Account.from_key(from_key)
    tx = {
        "from": account.address,
        "to": to,
        "value": amount,
        "gas": 21_000,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
        "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + w3.eth.max_priority_fee,
        "maxPriorityFeePerGas": w3.eth.max_priority_fee,
    }
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash)


def deploy_dev_contracts(
    rpc,
    deployer_key=DEPLOYER_KEY,
    *,
    round_length: int = DEV_ROUND_LENGTH,
    unlock_period: int = DEV_UNLOCK_PERIOD,
    ticket_validity_period: int = DEV_TICKET_VALIDITY_PERIOD,
) -> TicketBroker:
    return TicketBroker.deploy(
        rpc,
        deployer_key,
        round_length=round_length,
        unlock_period=unlock_period,
        ticket_validity_period=ticket_validity_period,
    )


def fund_gateway(
    rpc, broker_address: str, gateway_key, *, deposit: int, reserve: int, gas_money: int = ETHER
) -> TicketBroker:
    """Give the gateway account ETH from a dev account, then have it fund its deposit and
    reserve. Returns a broker client acting as the gateway."""
    gateway = Account.from_key(gateway_key).address
    send_eth(rpc, gateway, deposit + reserve + gas_money)
    broker = TicketBroker(rpc, broker_address, gateway_key)
    broker.fund_deposit_and_reserve(deposit, reserve)
    return broker


def load_or_deploy(rpc, info_path: Path, deployer_key=DEPLOYER_KEY, **params) -> dict:
    """Contract addresses from `info_path` if they still hold code on this chain (a persisted
    anvil), else a fresh deployment written there. Returns the dict written."""
    info_path = Path(info_path)
    w3 = connect(rpc)
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if all(w3.eth.get_code(info[k]) for k in ("ticket_broker", "rounds_manager")):
            return info
    broker = deploy_dev_contracts(w3, deployer_key, **params)
    info = {
        "chain_id": w3.eth.chain_id,
        "ticket_broker": broker.address,
        "rounds_manager": broker.rounds_address,
    }
    info_path.parent.mkdir(parents=True, exist_ok=True)
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    return info


# ---- command line, for the Makefile ----


def _up(args) -> int:
    run_dir = Path(args.dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / "anvil.pid"
    url = f"http://127.0.0.1:{args.port}"
    if not _answers(url):
        anvil = start_anvil(args.port, state_path=run_dir / "state.json", log_path=run_dir / "anvil.log", detach=True)
        pid_file.write_text(str(anvil.proc.pid))
    info = load_or_deploy(url, run_dir / "chain.json")
    info["rpc_url"] = url
    (run_dir / "chain.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))
    return 0


def _down(args) -> int:
    pid_file = Path(args.dir) / "anvil.pid"
    if not pid_file.exists():
        return 0
    pid = int(pid_file.read_text())
    if not _is_anvil(pid):  # gone already, and the pid may now belong to someone else
        pid_file.unlink()
        return 0
    os.kill(pid, signal.SIGINT)  # anvil writes its --state file on the way out
    deadline = time.monotonic() + args.timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink()
    return 0


def _is_anvil(pid: int) -> bool:
    try:
        return b"anvil" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _answers(url: str) -> bool:
    try:
        wait_for_rpc(url, timeout=0.5)
        return True
    except DevChainError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.devchain", description="the anvil dev chain")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start anvil (unless one answers) and deploy the contracts once")
    up.add_argument("--dir", default=".run/chain")
    up.add_argument("--port", type=int, default=8545)
    down = sub.add_parser("down", help="stop the anvil that `up` started")
    down.add_argument("--dir", default=".run/chain")
    down.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    return {"up": _up, "down": _down}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
