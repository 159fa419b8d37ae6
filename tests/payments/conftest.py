"""A paid operator for the payment tests that run real processes: its own echo worker,
redeemer and the gateway's watcher, and a gateway of its own."""

from types import SimpleNamespace

import pytest
from eth_account import Account

from devstack.devchain import DEV_PRIVATE_KEYS
from tasks.names import worker_key
from workers.redeemer_store import OperatorStore

GAS_KEY = DEV_PRIVATE_KEYS[3]  # pays the redemptions' gas, so the operator's balance moves only by payouts


@pytest.fixture(scope="module")
def module_name(request) -> str:
    """This test module's short name, which names its processes and their logs."""
    return request.module.__name__.removeprefix("test_payments_")


@pytest.fixture(scope="module")
def operator(stack, recorder, tmp_path_factory, module_name):
    """A fresh operator address (its balance starts at zero) with its own echo worker,
    redeemer and the gateway's watcher, for one test module; all stopped afterwards, so no
    other test's echo jobs land on a paid worker. Gives the address, the redeemer's store
    and the redeemer's process name (stack.log reads its log)."""
    address = Account.create().address
    # A registered operator of its own: its Redis user's payments queue is its address's.
    env = {**stack.create_operator(f"pay-{module_name}", address), "OPERATOR_ADDRESS": address,
           "OPERATOR_SECRET": f"{module_name}-test-operator-secret-0123456"}
    operator_id = int(env["OPERATOR_ID"])
    store_dir = tmp_path_factory.mktemp("redeemer")
    worker, redeemer = f"pay-echo-{module_name}", f"pay-redeemer-{module_name}"
    procs = [
        stack.start_worker(worker, "--models", "echo", env=env),
        stack.spawn(redeemer, ["-m", "workers.redeemer"], {
            **env, "OPERATOR_PRIVATE_KEY": GAS_KEY, "REDEEMER_DIR": str(store_dir),
            "REDEEM_INTERVAL_SECONDS": "0.2", "REDEEM_BATCH_SIZE": "100", "REDEEM_MAX_WAIT_SECONDS": "3600"}),
        stack.spawn(f"pay-watcher-{module_name}", ["-m", "app.watcher"], {"WATCHER_INTERVAL_SECONDS": "0.3"}),
    ]
    yield SimpleNamespace(address=address, store=OperatorStore.for_operator(store_dir, address),
                          redeemer=redeemer, operator_id=operator_id, env=env)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(15)
    stack.redis.delete(worker_key(operator_id, worker))


@pytest.fixture(scope="module")
def pay_gateway(stack, recorder, module_name):
    return stack.start_gateway(f"pay-gateway-{module_name}", workers=1, threads=8)
