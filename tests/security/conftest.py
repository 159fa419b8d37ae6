"""Operators as attackers: each test acts as an operator's Redis user made by the CLI
(`flask --app app operators create`), beside honest workers of the stack's own
operator, and shows the attack fail while the honest work goes on."""

import pytest

from support import Operator, cli_operator


@pytest.fixture(scope="module")
def mallory(stack, gateway):
    """A registered operator that misbehaves."""
    return Operator(cli_operator(stack, "mallory"))


@pytest.fixture(scope="module")
def honest(stack):
    """The stack's own operator (its workers are honest)."""
    return Operator(stack.operator_env)
