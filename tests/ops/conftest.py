"""Fixtures for the operations tests: a worker slot that serves its metrics."""

from types import SimpleNamespace

import pytest

from devstack.servers import free_port
from tasks.names import model_stats_key, worker_key


@pytest.fixture(scope="module")
def ops_worker(stack, gateway, request):
    """An echo worker of this test module, serving Prometheus metrics. It holds no model
    at first and loads echo on demand (a cache miss), then serves it warm (hits)."""
    name = f"ops-{request.module.__name__.removeprefix('test_ops_')}-slot0"
    # Our instant echo jobs teach admission that echo jobs never wait: put back what it
    # knew before, for the tests that follow.
    stats = model_stats_key("echo", "echo")
    saved = stack.redis.dump(stats)
    port = free_port()
    proc = stack.start_worker(name, "--models", "", "--dynamic", "echo",
                              "--metrics-port", str(port))
    yield SimpleNamespace(name=name, proc=proc, metrics_url=f"http://127.0.0.1:{port}/metrics")
    proc.terminate()
    proc.wait(30)
    stack.redis.delete(worker_key(stack.operator_id, name), stats)
    if saved is not None:
        stack.redis.restore(stats, 0, saved)
