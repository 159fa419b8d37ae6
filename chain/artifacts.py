"""The compiled contracts (chain/contracts/artifacts.json), read on demand."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

ARTIFACTS_PATH = Path(__file__).resolve().parent / "contracts" / "artifacts.json"


@lru_cache(maxsize=None)
def _load() -> dict:
    return json.loads(ARTIFACTS_PATH.read_text())["contracts"]


def abi(contract: str) -> list:
    return _load()[contract]["abi"]


def bytecode(contract: str) -> str:
    return _load()[contract]["bytecode"]
