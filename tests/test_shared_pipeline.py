"""Requests' Redis commands sent in one pipeline when they are asked for at the same
moment (app/shared_pipeline.py, on app/groups.py), on the suite's Redis: each request
gets its own replies, or its own error."""

import threading
import uuid

import redis as redis_lib
from redis.exceptions import ResponseError

from app.shared_pipeline import SharedPipeline
from support import wait_for

CONCURRENT = 6


class CountingRedis(redis_lib.Redis):
    """The suite's Redis, through a client that keeps the number of commands each
    pipeline it made sent in its round trip: what a group cost."""

    def __init__(self, redis):
        super().__init__(connection_pool=redis.connection_pool)
        self.round_trips: list[int] = []

    def pipeline(self, transaction=True, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        execute, round_trips = pipe.execute, self.round_trips

        def counted(raise_on_error=True):
            round_trips.append(len(pipe.command_stack))
            return execute(raise_on_error)

        pipe.execute = counted
        return pipe


def asked_together(redis, asks: list) -> tuple[list, list, list]:
    """Runs each ask from a thread of its own while the first one's round trip is held
    until all the others wait for the next: (the groups' sizes, each request's replies,
    each request's error)."""
    sizes, replies, errors = [], [None] * len(asks), [None] * len(asks)
    shared = None

    def on_group(size: int) -> None:
        sizes.append(size)
        if len(sizes) == 1:
            wait_for(lambda: shared.grouped.pending() == len(asks) - 1, timeout=30)

    shared = SharedPipeline(redis, on_group=on_group)

    def run(i: int) -> None:
        try:
            replies[i] = shared.execute(asks[i])
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(asks))]
    threads[0].start()
    wait_for(lambda: sizes, timeout=30)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sizes, replies, errors


def test_requests_asking_at_once_share_a_round_trip_and_get_their_own_replies(stack):
    prefix = f"shared-{uuid.uuid4()}"

    def ask(i: int):
        def commands(pipe) -> None:
            pipe.incrby(f"{prefix}:{i}", i + 1)
            pipe.get(f"{prefix}:{i}")
        return commands

    redis = CountingRedis(stack.redis)
    sizes, replies, errors = asked_together(redis, [ask(i) for i in range(CONCURRENT)])
    assert sizes == [1, CONCURRENT - 1]
    assert redis.round_trips == [2, 2 * (CONCURRENT - 1)]  # one pipeline a group
    assert errors == [None] * CONCURRENT
    assert replies == [[i + 1, str(i + 1).encode()] for i in range(CONCURRENT)]


def test_a_command_that_fails_fails_only_its_own_request(stack):
    prefix = f"shared-{uuid.uuid4()}"
    stack.redis.set(f"{prefix}:text", "not a number")

    def fine(pipe) -> None:
        pipe.incr(f"{prefix}:count")

    def refused(pipe) -> None:
        pipe.incr(f"{prefix}:text")

    def broken(pipe) -> None:
        raise ValueError("a bug in one request's commands")

    asks = [fine, fine, refused, fine, broken, fine]
    sizes, replies, errors = asked_together(stack.redis, asks)
    assert sizes == [1, len(asks) - 1]
    assert isinstance(errors[2], ResponseError) and isinstance(errors[4], ValueError)
    assert [e for i, e in enumerate(errors) if i not in (2, 4)] == [None] * 4
    assert sorted(r[0] for r in replies if r is not None) == [1, 2, 3, 4]
