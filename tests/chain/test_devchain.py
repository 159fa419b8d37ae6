"""The dev chain helpers that `make run` and the test bootstrap use."""

import json
import subprocess
import sys

from devstack import devchain


def test_load_or_deploy_reuses_live_contracts(anvil, tmp_path):
    info_path = tmp_path / "chain.json"
    first = devchain.load_or_deploy(anvil.url, info_path)
    assert first["chain_id"] == devchain.CHAIN_ID
    assert devchain.load_or_deploy(anvil.url, info_path) == first
    # Addresses that hold no code on this chain (a fresh anvil) are replaced.
    info_path.write_text(json.dumps({**first, "ticket_broker": "0x" + "12" * 20}))
    again = devchain.load_or_deploy(anvil.url, info_path)
    assert again["ticket_broker"] != first["ticket_broker"]
    assert json.loads(info_path.read_text()) == again


def test_up_and_down_keep_state(anvil, tmp_path):
    """`up` twice with a `down` between: the chain (and so the contracts) survive in state.json."""
    port = devchain.free_port()

    def cli(*args):
        cmd = [sys.executable, "-m", "devstack.devchain", *args, "--dir", str(tmp_path)]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=devchain.REPO_ROOT)

    first = json.loads(cli("up", "--port", str(port)).stdout)
    assert first["rpc_url"] == f"http://127.0.0.1:{port}"
    cli("down")
    assert not (tmp_path / "anvil.pid").exists()
    assert (tmp_path / "state.json").exists()
    second = json.loads(cli("up", "--port", str(port)).stdout)
    try:
        assert second == first
    finally:
        cli("down")
