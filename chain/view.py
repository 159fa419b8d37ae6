"""A reading of the chain, kept and reused: the one home of "how old may what we know of the
chain be". Workers make ticket params from one, the redeemer answers requests for fresh
params from one, and the gateway's settler bounds the tickets it signs against one.

A reading younger than `fresh` is served as it is. One younger than `usable` is served too,
while a background read replaces it. An older one is read again in the foreground when the
caller may wait, else the caller gets None at once and a background read starts. After a
failed read the chain is not asked again for `down` seconds, so nobody waits on a node that
does not answer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Reading(Generic[T]):
    value: T
    read_at: float


class CachedView(Generic[T]):
    def __init__(self, read: Callable[[], T], *, fresh: float, usable: float, down: float,
                 clock: Callable[[], float] = time.monotonic, name: str = "chain-view"):
        self._read_chain = read
        self.fresh, self.usable, self.down = fresh, usable, down
        self.clock = clock
        self.name = name
        self._reading: Reading[T] | None = None
        self._down_until = 0.0
        self._lock = threading.Lock()  # one read at a time, foreground or background

    @property
    def last(self) -> Reading[T] | None:
        """The latest reading, however old."""
        return self._reading

    def get(self, wait: bool = True) -> T | None:
        """The view, or None when there is none young enough (and, with wait, the chain did
        not answer a read made now)."""
        reading = self._reading
        if reading is not None:
            age = self.clock() - reading.read_at
            if age < self.fresh:
                return reading.value
            if age < self.usable:
                self.refresh_in_background()
                return reading.value
        if not wait:
            self.refresh_in_background()
            return None
        with self._lock:
            if self._reading is not reading:  # another thread read it meanwhile
                return self._reading.value if self._reading else None
            return self._read()

    def refresh_in_background(self) -> None:
        if self._lock.acquire(blocking=False):  # else a read is under way
            threading.Thread(target=self._read_then_release, name=self.name, daemon=True).start()

    def _read_then_release(self) -> None:
        try:
            self._read()
        finally:
            self._lock.release()

    def _read(self) -> T | None:
        """Reads the chain now (the caller holds the lock); None when it does not answer."""
        now = self.clock()
        if now < self._down_until:
            return None
        try:
            value = self._read_chain()
        except Exception as exc:  # any failure of the chain must leave the caller alone
            log.warning("%s: the chain did not answer: %s", self.name, exc)
            self._down_until = now + self.down
            return None
        self._reading = Reading(value, now)
        return value
