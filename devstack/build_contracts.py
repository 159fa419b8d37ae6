"""Compile chain/contracts/*.sol with the npm solc (solc-js) into artifacts.json.

    python -m devstack.build_contracts           # rewrite artifacts.json
    python -m devstack.build_contracts --check   # exit 1 when artifacts.json is stale

The compiled artifact is committed so that running the project needs Node only for anvil; this
script and its test keep the artifact honest. Settings are pinned because a different optimizer
or EVM version gives different bytecode.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = REPO_ROOT / "chain" / "contracts"
ARTIFACTS = CONTRACTS_DIR / "artifacts.json"
SOURCES = ("RoundsManager.sol", "TicketBroker.sol")
SOLC_VERSION = "0.8.37"
SETTINGS = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
}

# solc-js reads a standard-JSON input on stdin and prints the standard-JSON output.
_NODE_COMPILE = """
const solc = require('solc');
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  if (!solc.version().startsWith(process.argv[1] + '+')) {
    console.error('solc ' + solc.version() + ' is not ' + process.argv[1]);
    process.exit(2);
  }
  process.stdout.write(solc.compile(input));
});
"""


class BuildError(RuntimeError):
    pass


def standard_input() -> dict:
    sources = {name: {"content": (CONTRACTS_DIR / name).read_text()} for name in SOURCES}
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def run_solc(std_input: dict) -> dict:
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not on PATH; install Node 20 and run `npm ci`")
    if not (REPO_ROOT / "node_modules" / "solc").is_dir():
        raise BuildError(f"solc is not installed under {REPO_ROOT / 'node_modules'}; run `npm ci`")
    proc = subprocess.run(
        [node, "-e", _NODE_COMPILE, SOLC_VERSION],
        input=json.dumps(std_input),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,  # so require('solc') finds the repo's node_modules
        check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"solc failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def artifacts_from_output(output: dict) -> dict:
    errors = [e for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise BuildError("\n".join(e["formattedMessage"] for e in errors))
    contracts = {}
    for source in SOURCES:
        for name, compiled in output["contracts"][source].items():
            contracts[name] = {
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
            }
    return {
        "compiler": {"solc": SOLC_VERSION, "settings": SETTINGS},
        "contracts": dict(sorted(contracts.items())),
    }


def build() -> dict:
    return artifacts_from_output(run_solc(standard_input()))


def render(artifacts: dict) -> str:
    return json.dumps(artifacts, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if artifacts.json is stale")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        if not ARTIFACTS.exists() or ARTIFACTS.read_text() != text:
            print(f"{ARTIFACTS} is stale; run python -m devstack.build_contracts", file=sys.stderr)
            return 1
        return 0
    ARTIFACTS.write_text(text)
    print(f"wrote {ARTIFACTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
