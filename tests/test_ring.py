"""The native ring from Python: FIFO, timeouts, close/drain, and the GIL released while blocked."""
from __future__ import annotations

import threading
import time

import pytest

from ignite._engine import Ring, RingClosed


def test_fifo_and_capacity() -> None:
    ring = Ring(3)
    assert ring.capacity == 4
    assert [ring.try_push(i) for i in range(5)] == [True, True, True, True, False]
    assert len(ring) == 4
    assert [ring.pop() for _ in range(4)] == [0, 1, 2, 3]
    assert ring.try_pop() is None


def test_timeouts() -> None:
    ring = Ring(2)
    start = time.perf_counter()
    assert ring.pop(0.05) is None
    assert ring.push(1, 0.05) and ring.push(2, 0.05)
    assert ring.push(3, 0.05) is False
    assert time.perf_counter() - start >= 0.1


def test_close_drains_then_raises() -> None:
    ring = Ring(8)
    for i in range(3):
        ring.push(i)
    ring.close()
    assert ring.closed
    with pytest.raises(RingClosed):
        ring.push(9)
    assert [ring.pop(), ring.pop(), ring.pop()] == [0, 1, 2]
    with pytest.raises(RingClosed):
        ring.pop(1.0)


def test_blocked_threads_release_the_gil_and_see_every_item_once() -> None:
    ring = Ring(4)
    n, producers, consumers = 20000, 2, 2
    got: list[list[int]] = [[] for _ in range(consumers)]
    ticks = 0

    def produce(base: int) -> None:
        for i in range(n):
            ring.push(base + i)

    def consume(out: list[int]) -> None:
        while True:
            try:
                item = ring.pop(5.0)
            except RingClosed:
                return
            if item is not None:
                out.append(item)

    threads = [threading.Thread(target=produce, args=(p * n,)) for p in range(producers)]
    threads += [threading.Thread(target=consume, args=(got[c],)) for c in range(consumers)]
    for t in threads:
        t.start()
    # Pure-Python work keeps running while the others block inside the ring.
    while any(t.is_alive() for t in threads[:producers]):
        ticks += 1
        time.sleep(0)
    for t in threads[:producers]:
        t.join()
    ring.close()
    for t in threads[producers:]:
        t.join()
    items = sorted(got[0] + got[1])
    assert items == list(range(producers * n))
    assert ticks > 0


def test_blocked_pop_does_not_hold_the_gil() -> None:
    ring = Ring(2)
    counter = 0
    waiter = threading.Thread(target=lambda: ring.pop(0.5))
    waiter.start()
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        counter += 1
    waiter.join()
    assert counter > 10000
