"""The device workers' hand-over, with the two interleavings that once lost a batch: a device
fails its batch while the healthy device waits for the next one (the ingest path itself waiting
on that batch, as the writer and the reader's backpressure make it), and while the healthy device
has already seen the end of the batches. Both are forced by events, not by timing."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ignite.pipeline.channel import Empty
from ignite.pipeline.dispatch import Devices
from ignite.telemetry.live import Telemetry

WAIT = 30.0  # seconds before a test gives up on a worker: a hang fails instead of stalling the suite


def _batch(i: int) -> SimpleNamespace:
    rows = np.arange(4)
    ids = np.full((4, 3), i, np.int64)
    return SimpleNamespace(index=i, rows=rows, input_ids=ids, attention_mask=np.ones_like(ids), tried=set())


class _Runner:
    name, device, dtype, dim = "fake", "cpu", "fp32", 2

    def __init__(self, broken: bool = False, before_failing: threading.Event | None = None) -> None:
        self.broken, self.before_failing, self.calls = broken, before_failing, 0

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.broken:
            if self.before_failing is not None:
                assert self.before_failing.wait(WAIT)
            raise RuntimeError("kernel failed")
        return np.stack([input_ids[:, 0], np.ones(len(input_ids))], axis=1).astype(np.float32)


class _Ingest:
    """Hands out `n` batches, the first to the broken device (worker thread "w0"). With
    `wait_for_all`, the end comes only once every batch was delivered (as the writer holds the
    reader back until a window's batches are in); otherwise it comes once the batches are out."""

    def __init__(self, n: int, wait_for_all: bool) -> None:
        self.n, self.wait_for_all = n, wait_for_all
        self.batches = [_batch(i) for i in range(n)]
        self.delivered: dict[int, np.ndarray] = {}
        self.failed: dict[int, list[int]] = {}
        self.ran_out = threading.Event()  # every batch is out
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def take(self, seconds: float) -> Any:
        with self._lock:
            if self.batches and (self.batches[0].index > 0 or threading.current_thread().name == "w0"):
                return self.batches.pop(0)
            if not self.batches:
                self.ran_out.set()
                if not self.wait_for_all or len(self.delivered) == self.n:
                    return None
        time.sleep(min(seconds, 0.01))
        raise Empty("test")

    def deliver(self, batch: Any, out: np.ndarray, failed: list[int]) -> None:
        with self._lock:
            self.delivered[batch.index] = out
            if failed:
                self.failed[batch.index] = failed


def _run(n: int, wait_for_all: bool) -> tuple[_Ingest, _Runner, _Runner]:
    ingest = _Ingest(n, wait_for_all)
    broken, healthy = _Runner(broken=True, before_failing=ingest.ran_out), _Runner()
    devices = Devices([broken, healthy], Telemetry(), ingest.take, ingest.deliver, ingest.finished.set)
    errors: list[BaseException] = []

    def body(worker: int) -> None:
        try:
            devices.embed(worker)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        devices.worker_done()

    threads = [threading.Thread(target=body, args=(i,), name=f"w{i}", daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "a worker hung: a handed-over batch was never taken"
    assert not errors, errors
    assert ingest.finished.is_set()
    return ingest, broken, healthy


def _check(ingest: _Ingest, n: int, healthy: _Runner) -> None:
    assert sorted(ingest.delivered) == list(range(n)) and not ingest.failed
    for i, out in ingest.delivered.items():
        assert (out[:, 0] == i).all() and (out[:, 1] == 1).all()
    assert healthy.calls == n


@pytest.mark.parametrize("n", [1, 5])
def test_a_batch_handed_over_while_the_others_wait_for_more(n: int) -> None:
    """The ingest path gives no more batches until the broken device's one is delivered: the
    healthy device, waiting for a next batch, takes the handed-over one instead."""
    ingest, broken, healthy = _run(n, wait_for_all=True)
    _check(ingest, n, healthy)
    assert broken.calls == 2  # tried, retried, handed over


@pytest.mark.parametrize("n", [1, 5])
def test_a_batch_handed_over_after_the_others_saw_the_end(n: int) -> None:
    """The healthy device has seen the last batch go while the broken one still holds its batch:
    it stays until that batch is delivered or handed over, then takes it."""
    ingest, _, healthy = _run(n, wait_for_all=False)
    _check(ingest, n, healthy)


class _NativeRunner(_Runner):
    """A broken runner that also has a native backend (a token: the fake loop below runs it)."""

    def native_backend(self) -> str:
        return "native"


class _NativeIngest(_Ingest):
    """As _Ingest, with the native worker loop faked for worker "w0": its first batch fails
    there, the others it takes are embedded there (delivered as the healthy runner would)."""

    def __init__(self, n: int, wait_for_all: bool) -> None:
        super().__init__(n, wait_for_all)
        self.turns = 0

    def take_native(self, backend: Any, seconds: float) -> tuple[Any, str, int, int, float, bool]:
        assert backend == "native" and threading.current_thread().name == "w0"
        with self._lock:
            self.turns += 1
            if self.batches:
                batch = self.batches.pop(0)
                if batch.index == 0:
                    return batch, "kernel failed natively", 0, 0, 0.0, False
                self.delivered[batch.index] = np.stack([batch.input_ids[:, 0], np.ones(4)], axis=1)
                return None, "", 1, len(batch.rows), 0.001, False
        try:
            return None, "", 0, 0, 0.0, self.take(seconds) is None
        except Empty:
            return None, "", 0, 0, 0.0, False


@pytest.mark.parametrize("wait_for_all", [True, False])
def test_a_batch_failed_in_the_native_loop_takes_the_python_path(wait_for_all: bool) -> None:
    """A batch the native worker loop failed on is retried once in Python (its native run was the
    first try), then handed over to the healthy device; the native turns' counts reach the
    device's counters."""
    n = 5
    ingest = _NativeIngest(n, wait_for_all)
    broken, healthy = _NativeRunner(broken=True, before_failing=ingest.ran_out), _Runner()
    telemetry = Telemetry()
    devices = Devices([broken, healthy], telemetry, ingest.take, ingest.deliver, ingest.finished.set)
    devices.take_native = ingest.take_native
    threads = [threading.Thread(target=lambda i=i: (devices.embed(i), devices.worker_done()), name=f"w{i}",
                                daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "a worker hung: a handed-over batch was never taken"
    assert ingest.finished.is_set() and sorted(ingest.delivered) == list(range(n)) and not ingest.failed
    for i, out in ingest.delivered.items():
        assert (out[:, 0] == i).all() and (out[:, 1] == 1).all()
    assert broken.calls == 1 and ingest.turns > 0
    # Each batch counted once: by a native turn of w0 or by a Python run of w1 (batch 0 among them).
    assert sum(w.batches for w in telemetry.workers) == n
    assert sum(w.records for w in telemetry.workers) == 4 * n
    assert telemetry.workers[0].batches == n - healthy.calls
