"""The device workers: one thread per device (per in-flight slot of a device), all pulling from
the same batches, so a slow device simply takes fewer. A batch the backend fails on is retried,
then handed to a device that has not tried it, else bisected so one bad record cannot fail its
neighbours; a device that fails every batch in a row leaves the run to the others. A worker
waits on the ingest path in short turns and leaves only when no other device holds a batch it
could still hand over: a handed-over batch can be the one the writer (and through it the reader)
is waiting for.

On the native ingest path a runner with a native backend (backends.base.native_backend) runs
its batches in the native worker loop, in turns of POLL_SECONDS with no Python per batch; a
batch that fails there comes back to the same Python steps as any other failure."""
from __future__ import annotations

import functools
import logging
import threading
from typing import Any, Callable

import numpy as np

from ignite.backends.base import Runner, capabilities, native_backend
from ignite.errors import IgniteError
from ignite.pipeline.batch import Batch
from ignite.pipeline.channel import POLL_SECONDS, Empty
from ignite.rows.status import BACKEND_ERROR, STATUS_NAMES
from ignite.telemetry.live import Telemetry, WorkerCounters

log = logging.getLogger(__name__)

BROKEN_BACKEND_STREAK = 3  # batches in a row with no record embedded: the backend is broken, not the data

# What a worker does with a batch it ran: its embeddings and its rows that failed on their own.
Deliver = Callable[[Any, np.ndarray, list[int]], None]
# Makes a stage thread: (name, body, what to call when the body ends without error).
ThreadMaker = Callable[[str, Callable[[], None], Callable[[], None]], threading.Thread]
# One turn of the native worker loop on a backend, up to some seconds (Stages.take_native): the
# batch it failed on (with `tried`) or None, its error, batches and records done, busy seconds,
# whether the ingest path has no more batches.
TakeNative = Callable[[Any, float], tuple[Any, str, int, int, float, bool]]
_NONE_YET = object()  # a turn on the ingest path that brought no batch


def _short(exc: BaseException) -> str:
    text = (str(exc) or type(exc).__name__).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


class _DeviceBroken(Exception):
    """A worker's backend failed on every record of several batches in a row."""


class _HandedOff(Exception):
    """The batch failed here and went to another device."""


class NativeBackendError(Exception):
    """A native backend failed on a batch in the native worker loop (its error's text)."""


class Devices:
    """Runs batches on the runners (one per device). The ingest path is behind `take(seconds)`
    (the next batch; None once there are no more; raises channel.Empty when none came within
    `seconds`), `deliver` (a batch's results) and `finished` (called when the last worker ends)."""

    def __init__(self, runners: list[Runner], telemetry: Telemetry, take: Callable[[float], Any], deliver: Deliver,
                 finished: Callable[[], None]) -> None:
        self.runners, self.telemetry = runners, telemetry
        self._take, self._deliver, self._finished = take, deliver, finished
        # A runner with several in-flight slots (TensorRT: copy in, compute and copy out of
        # consecutive batches overlap) gets one worker thread per slot; they share its device index.
        self.threads_per_device = [max(1, capabilities(r).slots) for r in runners]
        # Devices alive, their worker threads still pulling, batches a failed device left behind,
        # batches in a worker's hands, whether the ingest path has no more; all under self._lock,
        # whose condition wakes a drained worker when a batch is handed over or finished.
        self._alive = set(range(len(runners)))
        self._pulling = list(self.threads_per_device)
        self._ended = 0
        self._orphans: list[Batch] = []
        self._in_hand = 0
        self._drained = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # Set by the native ingest path (Stages.open_native): runners with a native backend run
        # their batches through it.
        self.take_native: TakeNative | None = None

    def threads(self, thread: ThreadMaker) -> list[threading.Thread]:
        """The worker threads, made by the stages' `thread` (which turns an error into the run's)."""
        return [thread(f"worker-{i}.{slot}", functools.partial(self.embed, i), self.worker_done)
                for i, n in enumerate(self.threads_per_device) for slot in range(n)]

    def embed(self, worker: int) -> None:
        """A worker of device `worker`: runs batches until there are none left for it."""
        runner, streak = self.runners[worker], [0, ""]  # failures in a row, the last one's text
        counters = self.telemetry.worker(runner.device, runner.name, runner.dtype)
        backend = native_backend(runner) if self.take_native is not None else None
        while (taken := self._next_batch(worker, backend, counters)) is not None:
            try:
                if not self._embed_one(*taken, worker, runner, streak, counters):
                    return
            finally:
                self._put_down()

    def _embed_one(self, batch: Any, failure: BaseException | None, worker: int, runner: Runner, streak: list,
                   counters: Any) -> bool:
        """Run and deliver (or hand over) one batch, whose first run failed with `failure` when
        given (in the native worker loop); False once this device leaves the run."""
        try:
            with counters.clock:
                out, failed = self._run(batch, worker, runner, streak, failure)
        except _HandedOff:
            return True
        except _DeviceBroken as exc:  # the batch went to the other devices' queue first
            self._retire(worker, runner, exc)
            return False
        if streak[0] >= BROKEN_BACKEND_STREAK:
            # Raises when no other device is left: the batch is then not committed, so a
            # resume tries its records again. Otherwise it goes on with its failures marked.
            self._retire(worker, runner, _DeviceBroken(
                f"the {runner.name} backend failed on every record of {streak[0]} batches in a row: {streak[1]}"))
            self._deliver(batch, out, failed)
            return False
        self._deliver(batch, out, failed)
        counters.batches += 1
        counters.records += len(batch.rows)
        return True

    def _put_down(self) -> None:
        """A worker is done with its batch (delivered, handed over, or its run failed)."""
        with self._lock:
            self._in_hand -= 1
            self._changed.notify_all()

    def _retire(self, worker: int, runner: Runner, exc: _DeviceBroken) -> None:
        """Take a failing device out of the run; the run fails only if it was the last one."""
        with self._lock:
            if worker not in self._alive:  # a sibling thread already retired it
                return
            if len(self._alive) > 1:
                self._alive.discard(worker)
                log.error("%s on %s failed: %s; the other devices take its work", runner.name, runner.device, exc)
                return
        raise IgniteError(str(exc)) from exc.__cause__

    def _next_batch(self, worker: int, backend: Any,
                    counters: WorkerCounters) -> tuple[Any, BaseException | None] | None:
        """The next batch for a worker of device `worker` (counted in hand) and the error its first
        run failed with (None: not run yet), or None when it leaves: its device retired, or nothing
        is left and no other device could still hand a batch over."""
        while True:
            with self._lock:
                if worker not in self._alive:  # retired after failing: its siblings stop too
                    return None
                if (orphan := self._orphan_for(worker)) is not None:
                    self._in_hand += 1
                    return orphan, None
                if self._drained:
                    if not self._in_hand:
                        self._pulling[worker] -= 1
                        if not self._pulling[worker]:
                            self._alive.discard(worker)
                        return None
                    self._changed.wait(POLL_SECONDS)
                    continue
                # In hand while it pulls: a native turn holds batches, and one may fail and be handed over.
                self._in_hand += 1
            taken: Any = _NONE_YET
            try:
                taken = self._pull(backend, counters)
            finally:
                if taken is _NONE_YET or taken is None:
                    with self._lock:
                        self._in_hand -= 1
                        self._drained = self._drained or taken is None
                        self._changed.notify_all()
            if taken is not _NONE_YET and taken is not None:
                return taken

    def _pull(self, backend: Any, counters: WorkerCounters) -> Any:
        """One turn on the ingest path: a batch and its first run's error (None: not run yet), None
        once there are no more, or _NONE_YET. With a native backend the turn runs batches in the
        native worker loop for up to POLL_SECONDS; the batch it returns is one that failed there."""
        if backend is None:
            try:
                batch = self._take(POLL_SECONDS)
            except Empty:
                return _NONE_YET
            return None if batch is None else (batch, None)
        assert self.take_native is not None
        failed, error, batches, records, busy, finished = self.take_native(backend, POLL_SECONDS)
        counters.batches += batches
        counters.records += records
        counters.clock.add(busy)
        if failed is not None:
            return failed, NativeBackendError(error)
        return None if finished else _NONE_YET

    def _orphan_for(self, worker: int) -> Any:
        """A handed-over batch device `worker` has not tried (or one every device alive has
        tried, when its device retired since: it is bisected here); under self._lock."""
        for i, batch in enumerate(self._orphans):
            if worker not in batch.tried or not self._alive - batch.tried:
                return self._orphans.pop(i)
        return None

    def _hand_off(self, batch: Batch, worker: int) -> bool:
        """Give `batch` to the devices that have not tried it; False if there are none."""
        batch.tried.add(worker)
        with self._lock:
            if not self._alive - batch.tried:
                return False
            self._orphans.append(batch)
            self._changed.notify_all()
            return True

    def worker_done(self) -> None:
        """Called as each worker ends; the last one calls `finished`."""
        with self._lock:
            self._ended += 1
            last = self._ended == sum(self.threads_per_device)
        if last:
            self._finished()

    def _run(self, batch: Batch, worker: int, runner: Runner, streak: list,
             failure: BaseException | None = None) -> tuple[np.ndarray, list[int]]:
        """A batch's embeddings and its rows that failed. A batch the backend fails on (here, or
        before with `failure`) is retried once, then split in halves, so one bad record cannot
        fail its neighbours; a record that fails on its own gets zeros and status backend_error."""
        first = failure
        if first is None:
            try:
                return _infer(runner, batch), []
            except Exception as exc:  # noqa: BLE001 - any backend failure
                first = exc
        log.warning("backend failed on a batch of %d records (%s); retrying it", len(batch.rows), _short(first))
        out = np.zeros((len(batch.rows), runner.dim), np.float32)
        failed: list[int] = []
        try:
            out[:] = _infer(runner, batch)
        except Exception:  # noqa: BLE001
            if self._hand_off(batch, worker):
                streak[0] += 1
                if streak[0] >= BROKEN_BACKEND_STREAK:
                    raise _DeviceBroken(f"the {runner.name} backend failed on {streak[0]} batches in a row: "
                                        f"{_short(first)}") from first
                raise _HandedOff from None
            self._split(batch, runner, np.arange(len(batch.rows)), out, failed)
        if len(failed) == len(batch.rows):
            streak[0], streak[1] = streak[0] + 1, _short(first)  # embed() may retire the device
        else:
            streak[0] = 0
        if failed:
            log.warning("backend failed on %d record(s) on their own: status %s", len(failed),
                        STATUS_NAMES[BACKEND_ERROR])
        return out, failed

    def _split(self, batch: Batch, runner: Runner, idx: np.ndarray, out: np.ndarray, failed: list[int]) -> None:
        """Embed the halves of the failed rows `idx` of a batch, each half split again if it fails."""
        if len(idx) == 1:
            failed.append(int(idx[0]))
            return
        for part in (idx[: len(idx) // 2], idx[len(idx) // 2:]):
            try:
                out[part] = _infer(runner, batch, part)
            except Exception:  # noqa: BLE001
                self._split(batch, runner, part, out, failed)


def _infer(runner: Any, batch: Any, part: np.ndarray | None = None) -> np.ndarray:
    """The embeddings of a batch (of its rows `part` when given): pixels on a vision tower
    (ImageRunner.run_images), ids and mask otherwise (a Batch, or a native pipeline's batch)."""
    if isinstance(batch, Batch) and batch.pixels is not None:
        return runner.run_images(batch.pixels if part is None else batch.pixels[part])
    if part is None:
        return runner.run(batch.input_ids, batch.attention_mask)
    return runner.run(batch.input_ids[part], batch.attention_mask[part])
