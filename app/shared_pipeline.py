"""Redis commands of a gateway process's requests, sent in one pipeline when they are
asked for at the same moment (app/groups.py): under load, the rate window, the
admission and the enqueue of many requests share round trips; alone, a request's
commands make a round trip of their own, as before. Not a transaction: each request's
scripts are atomic as before, and no request's commands depend on another's."""

from __future__ import annotations

from collections.abc import Callable

from app.groups import Grouped

Ask = Callable[[object], None]  # adds a request's commands to a pipeline


class SharedPipeline:
    def __init__(self, redis, max_group: int = 64, on_group=None):
        self.redis = redis
        self.grouped = Grouped(self._run, max_group, on_group)

    def execute(self, ask: Ask) -> list:
        """The replies to the commands ask(pipe) adds, as pipe.execute() returns them:
        the first error among them is raised."""
        replies = self.grouped(ask)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _run(self, asks: list[Ask]) -> list:
        """One pipeline for the group; each request's replies, or the error of its own
        ask (its commands are taken out again)."""
        outcomes: list = []
        spans: list[tuple[int, int]] = []
        with self.redis.pipeline(transaction=False) as pipe:
            for ask in asks:
                start = len(pipe.command_stack)
                try:
                    ask(pipe)
                except Exception as exc:
                    del pipe.command_stack[start:]
                    outcomes.append(exc)
                    spans.append((start, start))
                    continue
                outcomes.append(None)
                spans.append((start, len(pipe.command_stack)))
            replies = pipe.execute(raise_on_error=False) if pipe.command_stack else []
        return [outcome if outcome is not None else replies[start:end]
                for outcome, (start, end) in zip(outcomes, spans)]
