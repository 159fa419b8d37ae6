"""A paid operator for the payment tests that run real processes: its own echo worker and
redeemer, the gateway's settler and watcher, and a gateway of its own."""

from types import SimpleNamespace

import pytest
from eth_account import Account

from devstack.chain import DEV_TICKET_EV
from devstack.devchain import DEV_PRIVATE_KEYS
from tasks.names import worker_key
from workers.redeemer_store import OperatorStore

GAS_KEY = DEV_PRIVATE_KEYS[3]  # pays the redemptions' gas, so the operator's balance moves only by payouts


@pytest.fixture(scope="module")
def module_name(request) -> str:
    """This test module's short name, which names its processes and their logs."""
    return request.module.__name__.removeprefix("test_payments_")


class PaidOperator(SimpleNamespace):
    """What a test knows of its operator: its address, its redeemer's store, and the
    processes (by role) that it may stop, kill or start again."""

    def start(self, role: str, extra_env: dict | None = None):
        self.procs[role] = self.commands[role](extra_env or {})
        return self.procs[role]

    def stop(self, role: str) -> None:
        proc = self.procs[role]
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="module")
def operator(stack, recorder, tmp_path_factory, module_name, request):
    """A fresh operator address (its balance starts at zero) with its own echo worker and
    redeemer, and the gateway's settler and watcher, for one test module; all stopped
    afterwards, so no other test's echo jobs land on a paid worker and no other module's
    debts meet this module's settler. A module's OPERATOR_ENV adds to its worker's and
    redeemer's environment, its REDEEMER_ENV to the redeemer's."""
    address = Account.create().address
    # A registered operator of its own: its Redis user's payments queue is its address's.
    env = {**stack.create_operator(f"pay-{module_name}", address), "OPERATOR_ADDRESS": address,
           "OPERATOR_SECRET": f"{module_name}-test-operator-secret-0123456",
           "OPERATOR_TICKET_EV": str(DEV_TICKET_EV), **getattr(request.module, "OPERATOR_ENV", {})}
    operator_id = int(env["OPERATOR_ID"])
    store_dir = tmp_path_factory.mktemp("redeemer")
    worker = f"pay-echo-{module_name}"
    paid = PaidOperator(stack=stack, address=address, store=OperatorStore.for_operator(store_dir, address),
                        worker=worker, redeemer=f"pay-redeemer-{module_name}",
                        watcher=f"pay-watcher-{module_name}",
                        settler=f"pay-settler-{module_name}", operator_id=operator_id, env=env,
                        procs={})
    redeemer_env = {**env, "OPERATOR_PRIVATE_KEY": GAS_KEY, "REDEEMER_DIR": str(store_dir),
                    "REDEEM_CONFIRMATIONS": "0", "REDEEM_INTERVAL_SECONDS": "0.2", "REDEEM_BATCH_SIZE": "100",
                    "REDEEM_MAX_WAIT_SECONDS": "3600", "REDEEM_RETRY_MAX_SECONDS": "2",
                    **getattr(request.module, "REDEEMER_ENV", {})}
    paid.redeemer_env = redeemer_env
    paid.commands = {
        "redeemer": lambda extra: stack.spawn(paid.redeemer, ["-m", "workers.redeemer"], {**redeemer_env, **extra}),
        "watcher": lambda extra: stack.spawn(paid.watcher, ["-m", "app.watcher"],
                                             {"WATCHER_INTERVAL_SECONDS": "0.3", **extra}),
        "settler": lambda extra: stack.start_settler(paid.settler, extra),
    }
    paid.procs["worker"] = stack.start_worker(worker, "--models", "echo", env=env)
    for role in paid.commands:
        paid.start(role)
    yield paid
    for proc in paid.procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in paid.procs.values():
        proc.wait(15)
    stack.redis.delete(worker_key(operator_id, worker))


@pytest.fixture(scope="module")
def pay_gateway(stack, recorder, module_name):
    return stack.start_gateway(f"pay-gateway-{module_name}", workers=1)
