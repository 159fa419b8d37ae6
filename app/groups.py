"""Calls that arrive together, made together: the requests of a gateway process that need
the same kind of round trip at the same moment share one (new jobs' INSERTs in one
transaction, app/store/group_commit.py; Redis commands in one pipeline,
app/shared_pipeline.py). Each caller gets its own result or its own error, once its group
is done, as if it had made the call alone; alone, it makes the call alone.

No thread of its own: the first caller to find no group in flight makes the call for all
those pending (it leads); those that arrive meanwhile wait, and the first of them leads
the next group, so that no caller makes more than one group's call. Under gevent (the
gateway's gunicorn workers) the waits are greenlets'; threading's primitives are
gevent's there."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Call:
    item: Any
    done: threading.Event = field(default_factory=threading.Event)
    made: bool = False  # its group's call was made: `result` is its outcome
    designated: bool = False  # it leads the next group
    result: Any = None  # what the call returned for it, or the exception it raises


class Grouped:
    """`grouped(item)`: run([item, and the others pending]) once, and item's part of it.
    `run(items)` returns one outcome per item, in order: a value, or an exception (which
    that item's caller raises); when run itself raises, every caller of the group does."""

    def __init__(self, run: Callable[[list], list], max_group: int = 64,
                 on_group: Callable[[int], None] | None = None):
        self.run = run
        self.max_group = max_group
        self.on_group = on_group  # called with each group's size (a metric)
        self._lock = threading.Lock()
        self._pending: list[_Call] = []
        self._in_flight = False

    def __call__(self, item):
        mine = _Call(item)
        with self._lock:
            self._pending.append(mine)
            leads = not self._in_flight
            self._in_flight = True
        if not leads:
            try:
                mine.done.wait()  # its group's call made, or it leads the next
            except BaseException:  # its greenlet killed: the others must not wait on it
                self._abandon(mine)
                raise
        if not mine.made:
            self._lead()
        if isinstance(mine.result, BaseException):
            raise mine.result
        return mine.result

    def pending(self) -> int:
        """Callers waiting for the next group."""
        with self._lock:
            return len(self._pending)

    def _lead(self) -> None:
        """Makes the pending calls (the leader's first), then hands over to the first of
        those that came meanwhile, or stops."""
        with self._lock:
            group = self._pending[:self.max_group]
            del self._pending[:self.max_group]
        outcomes = None  # stays None when the leader itself is stopped (GreenletExit)
        try:
            if self.on_group is not None:
                self.on_group(len(group))
            outcomes = self.run([call.item for call in group])
        except Exception as exc:  # the call failed: for everyone in it
            outcomes = [exc] * len(group)
        finally:
            following = self._hand_over(group, outcomes)
            if following is not None:
                following.done.set()

    def _abandon(self, call: _Call) -> None:
        """A caller that stopped waiting: out of the pending ones, and when it was to
        lead the next group, the next of them leads it. (One already in a group in
        flight is made with it.)"""
        following = None
        with self._lock:
            if call not in self._pending:
                return
            self._pending.remove(call)
            if not call.designated:
                return
            if self._pending:
                following = self._pending[0]
                following.designated = True
            else:
                self._in_flight = False
        if following is not None:
            following.done.set()

    def _hand_over(self, group: list[_Call], outcomes: list | None) -> _Call | None:
        """Gives each caller of the group its outcome, and the next group's leader."""
        for index, call in enumerate(group):
            call.result = (outcomes[index] if outcomes is not None
                           else RuntimeError("the group's call was not made"))
            call.made = True
            call.done.set()
        with self._lock:
            if self._pending:
                self._pending[0].designated = True
                return self._pending[0]
            self._in_flight = False
            return None
