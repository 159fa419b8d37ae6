"""The committed artifacts.json is what the committed Solidity compiles to."""

import shutil

import pytest

from support import missing_tool

from devstack import build_contracts as build


def test_artifacts_match_source():
    if shutil.which("node") is None or not (build.REPO_ROOT / "node_modules" / "solc").is_dir():
        missing_tool("needs node and `npm ci` (node_modules/solc)")
    fresh = build.render(build.build())
    assert build.ARTIFACTS.read_text() == fresh, "stale: run python -m devstack.build_contracts"


def test_artifacts_hold_livepeer_abi():
    from chain import artifacts

    names = {item.get("name") for item in artifacts.abi("TicketBroker")}
    assert {
        "fundDeposit", "fundReserve", "fundDepositAndReserve", "redeemWinningTicket",
        "batchRedeemWinningTickets", "unlock", "cancelUnlock", "withdraw", "getSenderInfo",
        "usedTickets", "getTicketHash", "DepositFunded", "ReserveFunded", "WinningTicketRedeemed",
        "WinningTicketTransfer", "Unlock", "UnlockCancelled", "Withdrawal",
    } <= names
    redeem = next(i for i in artifacts.abi("TicketBroker") if i.get("name") == "redeemWinningTicket")
    ticket = redeem["inputs"][0]
    assert ticket["internalType"] == "struct TicketBroker.Ticket"
    assert [(c["name"], c["type"]) for c in ticket["components"]] == [
        ("recipient", "address"), ("sender", "address"), ("faceValue", "uint256"), ("winProb", "uint256"),
        ("senderNonce", "uint256"), ("recipientRandHash", "bytes32"), ("auxData", "bytes"),
    ]
