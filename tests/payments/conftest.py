"""A paid operator for the payment tests that run real processes: its own echo worker,
redeemer and the gateway's watcher, and a gateway of its own."""

import pytest
from eth_account import Account

from chain.devchain import DEV_PRIVATE_KEYS
from chain.store import OperatorStore

GAS_KEY = DEV_PRIVATE_KEYS[3]  # pays the redemptions' gas, so the operator's balance moves only by payouts


@pytest.fixture(scope="module")
def operator(stack, recorder, tmp_path_factory, request):
    """A fresh operator address (its balance starts at zero) with its own echo worker,
    redeemer and the gateway's watcher, for one test module; all stopped afterwards, so no
    other test's echo jobs land on a paid worker."""
    module = request.module.__name__.removeprefix("test_payments_")
    address = Account.create().address
    env = {"OPERATOR_ADDRESS": address, "OPERATOR_SECRET": f"{module}-test-operator-secret-0123456"}
    store_dir = tmp_path_factory.mktemp("redeemer")
    worker = f"pay-echo-{module}"
    procs = [
        stack.start_worker(worker, "--models", "echo", env=env),
        stack.spawn(f"pay-redeemer-{module}", ["-m", "chain.redeemer"], {
            **env, "OPERATOR_PRIVATE_KEY": GAS_KEY, "REDEEMER_DIR": str(store_dir),
            "REDEEM_INTERVAL_SECONDS": "0.2", "REDEEM_BATCH_SIZE": "100", "REDEEM_MAX_WAIT_SECONDS": "3600"}),
        stack.spawn(f"pay-watcher-{module}", ["-m", "chain.watcher"], {"WATCHER_INTERVAL_SECONDS": "0.3"}),
    ]
    yield address, OperatorStore.for_operator(store_dir, address)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(15)
    stack.redis.delete(f"worker:{worker}")


@pytest.fixture(scope="module")
def pay_gateway(stack, recorder, request):
    module = request.module.__name__.removeprefix("test_payments_")
    return stack.start_gateway(f"pay-gateway-{module}", workers=1, threads=8)
