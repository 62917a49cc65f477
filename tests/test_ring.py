"""ignite._engine.Ring from Python: FIFO, timeouts, close/drain, errors, the GIL released while
blocked, Ctrl-C reaching a blocked call, and many threads seeing every item exactly once."""
from __future__ import annotations

import linecache
import signal
import sys
import threading
import time
import types

import pytest

from ignite._engine import EngineError, InvalidArgument, Ring, RingClosed, build_info


def test_fifo_capacity_and_len() -> None:
    ring = Ring(3)
    assert ring.capacity == 4  # rounded up to a power of two
    assert [ring.try_push(i) for i in range(5)] == [True, True, True, True, False]
    assert len(ring) == 4
    assert [ring.pop() for _ in range(4)] == [0, 1, 2, 3]
    assert ring.try_pop() is None
    assert len(ring) == 0


def test_handles_cover_uint64_and_reject_others() -> None:
    ring = Ring(2)
    ring.push(2**64 - 1)
    assert ring.pop() == 2**64 - 1
    for bad in (-1, 2**64, "1", 1.5):
        with pytest.raises(TypeError):
            ring.push(bad)  # type: ignore[arg-type]


def test_bad_capacity_is_a_value_error() -> None:
    for bad in (0, 2**30 + 1):
        with pytest.raises(InvalidArgument) as info:
            Ring(bad)
        assert isinstance(info.value, ValueError) and isinstance(info.value, EngineError)


def test_timeouts_return_false_and_none() -> None:
    ring = Ring(2)
    start = time.perf_counter()
    assert ring.pop(0.05) is None
    assert time.perf_counter() - start >= 0.05
    assert ring.push(1, 0.05) and ring.push(2, 0)
    start = time.perf_counter()
    assert ring.push(3, 0.05) is False
    assert time.perf_counter() - start >= 0.05
    assert ring.try_push(3) is False
    with pytest.raises(ValueError):
        ring.pop(float("nan"))


def test_close_drains_then_raises() -> None:
    ring = Ring(8)
    for i in range(3):
        ring.push(i)
    ring.close()
    assert ring.closed
    with pytest.raises(RingClosed):
        ring.push(9)
    with pytest.raises(RingClosed):
        ring.try_push(9)
    assert [ring.pop(), ring.try_pop(), ring.pop(0)] == [0, 1, 2]
    with pytest.raises(RingClosed):
        ring.pop()  # no timeout: must not block on a closed, empty ring
    with pytest.raises(RingClosed):
        ring.try_pop()


def _inside(thread: threading.Thread, function: str, stop: threading.Event | None = None) -> None:
    """Wait until `thread` runs a line of `function` that calls into the ring (its frame is there:
    the call has begun), or `stop` is set."""
    while stop is None or not stop.is_set():
        frame = sys._current_frames().get(thread.ident or -1)
        if frame is not None and frame.f_code.co_name == function and "ring.pop" in _line(frame):
            return
        time.sleep(0.001)


def _line(frame: types.FrameType) -> str:
    return linecache.getline(frame.f_code.co_filename, frame.f_lineno)


def test_close_wakes_a_blocked_pop() -> None:
    ring = Ring(2)
    outcome: list[str] = []

    def wait() -> None:
        try:
            ring.pop()
        except RingClosed:
            outcome.append("closed")

    waiter = threading.Thread(target=wait)
    waiter.start()
    _inside(waiter, "wait")
    ring.close()
    waiter.join(10.0)
    assert outcome == ["closed"]


def test_blocked_pop_releases_the_gil() -> None:
    """The waiter sits in pop(); this thread still runs Python and pushes the item it gets. Had
    pop() kept the GIL, this thread would run again only once pop() timed out (None)."""
    ring = Ring(2)
    got: list[int | None] = []

    def wait() -> None:
        got.append(ring.pop(30.0))

    waiter = threading.Thread(target=wait)
    waiter.start()
    _inside(waiter, "wait")
    assert waiter.is_alive() and not got
    ring.push(7)
    waiter.join(30.0)
    assert got == [7]


class _Interrupted(Exception):
    pass


def test_ctrl_c_reaches_a_blocked_pop() -> None:
    """The same path as Ctrl-C (SIGINT -> PyErr_CheckSignals -> Python handler), with a handler
    that raises our own exception so a failure cannot abort the whole pytest session. A helper
    sends SIGINT once pop() has begun and pushes an item only after the handler ran: the handler
    must run inside pop(), while nothing was pushed. Without the signal checks inside pop() it
    would run only after pop() returned the item."""
    ring = Ring(2)
    handled = threading.Event()
    seen: list[bool] = []  # at the handler: had the helper pushed yet?
    pushed = threading.Event()

    def handler(signum: int, frame: object) -> None:
        seen.append(pushed.is_set())
        handled.set()
        raise _Interrupted

    main = threading.main_thread()

    def helper() -> None:
        _inside(main, "test_ctrl_c_reaches_a_blocked_pop")
        signal.pthread_kill(main.ident, signal.SIGINT)  # type: ignore[arg-type]
        handled.wait(10.0)
        pushed.set()
        ring.push(1)

    previous = signal.signal(signal.SIGINT, handler)
    thread = threading.Thread(target=helper)
    try:
        thread.start()
        with pytest.raises(_Interrupted):
            ring.pop(60.0)
    finally:
        thread.join()
        signal.signal(signal.SIGINT, previous)
    assert seen == [False]


def test_two_producers_two_consumers_see_every_item_once() -> None:
    ring = Ring(4)  # small, so both sides block often
    n, producers, consumers = 20000, 2, 2
    got: list[list[int]] = [[] for _ in range(consumers)]

    def produce(base: int) -> None:
        for i in range(n):
            assert ring.push(base + i, 5.0)

    def consume(out: list[int]) -> None:
        while True:
            try:
                item = ring.pop(5.0)
            except RingClosed:
                return
            assert item is not None
            out.append(item)

    workers = [threading.Thread(target=produce, args=(p * n,)) for p in range(producers)]
    readers = [threading.Thread(target=consume, args=(got[c],)) for c in range(consumers)]
    for t in workers + readers:
        t.start()
    for t in workers:
        t.join()
    ring.close()
    for t in readers:
        t.join()
    assert sorted(got[0] + got[1]) == list(range(producers * n))
    for items in got:  # each producer's items stay in order as any one consumer sees them
        for p in range(producers):
            mine = [i for i in items if i // n == p]
            assert mine == sorted(mine)


def test_build_info() -> None:
    info = build_info()
    assert set(info) == {"cuda", "tensorrt", "reader", "image", "version", "compiler"}
    assert all(isinstance(info[k], bool) for k in ("cuda", "tensorrt", "reader", "image"))
    assert info["version"] and info["compiler"]
