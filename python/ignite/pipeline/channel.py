"""A stage-to-stage channel: the native bounded ring carries integer handles; the objects they
stand for wait in a table here. Every wait is timed so cancellation is seen promptly."""
from __future__ import annotations

import itertools
import threading
import time
from typing import Generic, TypeVar

from ignite._engine import Ring, RingClosed

T = TypeVar("T")

POLL_SECONDS = 0.1


class Cancelled(Exception):
    """The run is stopping (another stage failed, or a signal arrived)."""


class Empty(Exception):
    """Nothing came within the wait; the channel is still open."""


class Channel(Generic[T]):
    def __init__(self, name: str, capacity: int, cancel: threading.Event) -> None:
        self.name = name
        self._ring = Ring(capacity)
        self._objects: dict[int, T] = {}
        self._counter = itertools.count(1)
        self._cancel = cancel

    def put(self, item: T) -> None:
        handle = next(self._counter)
        self._objects[handle] = item
        try:
            while not self._ring.push(handle, POLL_SECONDS):
                if self._cancel.is_set():
                    raise Cancelled(self.name)
        except (Cancelled, RingClosed):
            del self._objects[handle]
            raise Cancelled(self.name) from None

    def get(self, seconds: float | None = None) -> T | None:
        """The next item, or None once the channel is closed and drained; waits at most `seconds`
        (then raises Empty) when given."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            wait = POLL_SECONDS if deadline is None else min(POLL_SECONDS, max(deadline - time.monotonic(), 0.0))
            try:
                handle = self._ring.pop(wait)
            except RingClosed:
                return None
            if handle is not None:
                return self._objects.pop(handle)
            if self._cancel.is_set():
                raise Cancelled(self.name)
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty(self.name)

    def close(self) -> None:
        self._ring.close()

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def capacity(self) -> int:
        return self._ring.capacity
