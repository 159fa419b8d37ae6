"""Operators as attackers: each test acts as an operator's Redis user made by the CLI
(`flask --app app operators create`), beside honest workers of the stack's own
operator, and shows the attack fail while the honest work goes on."""

import subprocess
import sys

import pytest
from eth_account import Account

from devstack.servers import python_env
from tasks.connections import redis_client
from workers.events import EventSender, OperatorIdentity


def cli_operator(stack, name: str) -> dict:
    """An operator made by the CLI, as an admin would: its workers' environment."""
    made = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "operators",
                           "create", "--name", name, "--address", Account.create().address],
                          env=python_env(stack.env), capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    return dict(line.split("=", 1) for line in made.stdout.split() if "=" in line)


class Operator:
    """An operator's view of the broker: its own user, its own key."""

    def __init__(self, env: dict):
        self.env = env
        self.id = int(env["OPERATOR_ID"])
        self.redis = redis_client(env["REDIS_URL"])
        self.events = EventSender(self.redis, OperatorIdentity(
            self.id, bytes.fromhex(env["OPERATOR_TOKEN"])))


@pytest.fixture(scope="module")
def mallory(stack, gateway):
    """A registered operator that misbehaves."""
    return Operator(cli_operator(stack, "mallory"))


@pytest.fixture(scope="module")
def honest(stack):
    """The stack's own operator (its workers are honest)."""
    return Operator(stack.operator_env)
