"""Reading and moving the messages of Celery's Redis queues. Kombu keeps a queue as one
Redis list per priority step: `name` for the first, `name\\x06\\x16<step>` for the others."""

from bisect import bisect

from kombu.transport.redis import PRIORITY_STEPS

SEPARATOR = "\x06\x16"


def priority_keys(queue: str) -> list[str]:
    return [priority_key(queue, step) for step in PRIORITY_STEPS]


def priority_key(queue: str, priority: int) -> str:
    """The list a message of `priority` goes to (kombu's Channel._q_for_pri): the step at
    or below it, priorities held within 0..9."""
    step = PRIORITY_STEPS[bisect(PRIORITY_STEPS, max(0, min(int(priority), 9))) - 1]
    return queue if step == PRIORITY_STEPS[0] else f"{queue}{SEPARATOR}{step}"


def depth(redis, queue: str) -> int:
    """Messages waiting in a queue, all priorities together."""
    with redis.pipeline() as pipe:
        ask_depth(pipe, queue)
        return sum(pipe.execute())


def ask_depth(pipe, queue: str) -> None:
    """Adds to `pipe` the reads whose replies sum to the queue's depth (one per priority
    step), for a caller that has more to ask in the same round trip."""
    for key in priority_keys(queue):
        pipe.llen(key)


def move_all(redis, source: str, target: str) -> int:
    """Moves every waiting message of `source` to `target`, keeping each priority and
    the order. Atomic per message: a message is always in one of the two lists."""
    moved = 0
    for src, dst in zip(priority_keys(source), priority_keys(target)):
        while redis.lmove(src, dst, "RIGHT", "LEFT") is not None:
            moved += 1
    return moved
