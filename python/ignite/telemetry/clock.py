"""Busy time of one thread, kept lock-free: only the owning thread writes, a collector reads."""
from __future__ import annotations

import time


class BusyClock:
    """Wall seconds a stage thread spends working; paused around its waits (for input, for room
    downstream). `seconds` is a float only its thread writes, so reading it from a collector
    thread takes no lock (a float attribute is read whole under the GIL). Use `with clock:`
    around a piece of work, or pause()/resume() around the waits of a loop."""

    __slots__ = ("seconds", "_since")

    def __init__(self) -> None:
        self.seconds = 0.0
        self._since: float | None = None

    def resume(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()

    def pause(self) -> None:
        if self._since is not None:
            self.seconds += time.perf_counter() - self._since
            self._since = None

    def add(self, seconds: float) -> None:
        """Count work timed elsewhere (the native worker loop's seconds in the backend)."""
        self.seconds += seconds

    def __enter__(self) -> BusyClock:
        self.resume()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pause()
