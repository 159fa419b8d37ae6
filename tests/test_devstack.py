"""The test and benchmark stack (devstack/stack.py) leaves no server behind when it
cannot come up whole: a missing anvil once left PostgreSQL and Redis running."""

import socket

import pytest

from devstack import stack as stack_module


class NoChain(Exception):
    pass


def test_a_stack_whose_chain_cannot_start_stops_postgres_and_redis(tmp_path, monkeypatch):
    redis_servers = []

    class RecordedRedis(stack_module.Redis):
        def start(self):
            redis_servers.append(self)
            super().start()

    def no_chain(base):
        raise NoChain("anvil is not installed")

    monkeypatch.setattr(stack_module, "Redis", RecordedRedis)
    monkeypatch.setattr(stack_module, "start_test_chain", no_chain)
    with pytest.raises(NoChain):
        stack_module.Stack(tmp_path, [])

    assert not (tmp_path / "postgres" / "postmaster.pid").exists()  # pg_ctl stop removes it
    [redis] = redis_servers
    assert redis.proc.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", redis.port), timeout=1).close()
