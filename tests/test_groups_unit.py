"""The leader-and-followers core of grouped calls (app/groups.py), on a stub call: each
caller gets its part of its group's outcome, and a caller that stops waiting strands no
one."""

import dataclasses
import threading

from app import groups
from app.groups import Grouped
from support import wait_for


class Held:
    """A stub call that holds its first group until released, recording every group."""

    def __init__(self):
        self.groups, self.release = [], threading.Event()

    def __call__(self, items: list) -> list:
        self.groups.append(list(items))
        if len(self.groups) == 1:
            self.release.wait(30)
        return [item * 10 if item >= 0 else ValueError(f"item {item}") for item in items]


def call_in_thread(grouped, item, results: dict) -> threading.Thread:
    def run():
        try:
            results[item] = grouped(item)
        except BaseException as exc:
            results[item] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_callers_that_come_while_a_group_is_made_make_the_next_together():
    held, results = Held(), {}
    grouped = Grouped(held)
    threads = [call_in_thread(grouped, 0, results)]
    wait_for(lambda: held.groups, timeout=10)
    for item in (1, -2, 3):
        threads.append(call_in_thread(grouped, item, results))
        wait_for(lambda: grouped.pending() == len(threads) - 1, timeout=10)
    held.release.set()
    for thread in threads:
        thread.join(10)
    assert held.groups == [[0], [1, -2, 3]]
    assert results[0] == 0 and results[1] == 10 and results[3] == 30
    assert isinstance(results[-2], ValueError)  # its own error, not the group's


def test_a_caller_killed_while_it_was_to_lead_the_next_group_strands_no_one(monkeypatch):
    """The first follower is woken to lead the next group and is stopped right then (a
    greenlet killed): the next follower leads instead, and calls after still go through."""
    made = []

    class KilledOnWake(threading.Event):
        def wait(self, timeout=None):
            super().wait(timeout)
            if not made:  # the first follower's event
                made.append(self)
                raise KeyboardInterrupt("stopped as it woke")
            return True

    @dataclasses.dataclass
    class KilledCall(groups._Call):
        done: threading.Event = dataclasses.field(default_factory=KilledOnWake)

    held, results = Held(), {}
    grouped = Grouped(held)
    threads = [call_in_thread(grouped, 0, results)]
    wait_for(lambda: held.groups, timeout=10)
    monkeypatch.setattr(groups, "_Call", KilledCall)
    for item in (1, 2, 3):
        threads.append(call_in_thread(grouped, item, results))
        wait_for(lambda: grouped.pending() == len(threads) - 1, timeout=10)
    held.release.set()
    for thread in threads:
        thread.join(10)
    assert isinstance(results[1], KeyboardInterrupt)
    assert held.groups == [[0], [2, 3]] and (results[2], results[3]) == (20, 30)
    monkeypatch.undo()
    assert grouped(4) == 40 and held.groups[-1] == [4]
