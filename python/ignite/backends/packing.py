"""Pack a tokenized window into batches: sort by length, cut batches whose padded size
(rows x padded length) stays under a token budget, fill int32 ids and mask into buffers a
BufferPool lends and takes back. Native (ignite._engine, GIL released) when the module has the
packer; numpy otherwise, and as the reference the native packer is tested against. The Python
loop runs once per batch, never per record. Here, below the pipeline, because autotune packs its
calibration batches the same way."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ignite.backends.base import MAX_ROWS

try:
    from ignite._engine import fill_batch as _native_fill
    from ignite._engine import plan_batches as _native_plan
except ImportError:  # a build of the native module without the packer, or none at all
    _native_fill = _native_plan = None

NATIVE = _native_plan is not None


def round_up(length: np.ndarray | int, multiple: int) -> np.ndarray | int:
    return -(-length // multiple) * multiple


def padded_width(length: np.ndarray | int, multiple: int, max_width: int = 0) -> np.ndarray | int:
    """`length` rounded up to `multiple`, but never past `max_width` (when > 0: the backend's longest
    shape) unless the length itself is longer."""
    rounded = round_up(length, multiple)
    return np.maximum(length, np.minimum(rounded, max_width)) if max_width > 0 else rounded


@dataclass(frozen=True)
class Plan:
    """Batch i holds records order[bounds[i]:bounds[i+1]] padded to widths[i] tokens; iterating
    yields each batch's records."""
    order: np.ndarray  # int64 record indices by ascending length, ties in input order
    bounds: np.ndarray  # int64, batches + 1
    widths: np.ndarray  # int64 per batch

    def __len__(self) -> int:
        return len(self.widths)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.order[self.bounds[i]: self.bounds[i + 1]]


def _native(native: bool | None) -> bool:
    if native and not NATIVE:
        raise RuntimeError("the native packer is not in ignite._engine: rebuild it (pip install -e .)")
    return NATIVE if native is None else native


def plan_batches(lengths: np.ndarray, budget: int, pad_multiple: int = 1, max_rows: int = MAX_ROWS,
                 max_width: int = 0, *, native: bool | None = None) -> Plan:
    """Batches of record indices (into `lengths`), each under `budget` padded tokens and at most
    `max_rows` rows; a record longer than the budget still gets a batch of its own. Widths are
    rounded up to `pad_multiple` but never past `max_width` (> 0; a GPU engine's longest profile is
    the max length, so a 100-token record of --max-length 100 must not become 104). `native` None:
    native when built."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if max_width < 0:
        raise ValueError(f"plan_batches: max_width must be >= 0, not {max_width}")
    if _native(native):
        return Plan(*_native_plan(lengths, budget, pad_multiple, max_rows, max_width))
    order = np.argsort(lengths, kind="stable")
    padded = padded_width(lengths[order], pad_multiple, max_width)
    bounds, i, n = [0], 0, len(order)
    while i < n:
        # Sorted ascending, so a batch's padded length is that of its last row: the sizes
        # k * padded[i + k - 1] grow with k and the largest k under the budget is a search.
        span = min(n - i, max_rows, max(1, budget // max(int(padded[i]), 1)))
        sizes = np.arange(1, span + 1) * padded[i: i + span]
        i += max(1, int(np.searchsorted(sizes, budget, side="right")))
        bounds.append(i)
    ends = np.asarray(bounds, dtype=np.int64)
    return Plan(order.astype(np.int64, copy=False), ends, padded[ends[1:] - 1].astype(np.int64, copy=False))


def fill_batch(token_ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray, pad_multiple: int = 1,
               pad_id: int = 0, *, width: int | None = None, out: Buffers | None = None,
               native: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Padded [len(rows), width] int32 ids and mask for the given records of a flat token array.
    `width`: the plan's (default: the longest row rounded up to pad_multiple, as plan_batches
    does without max_width). `out`: buffers from
    a BufferPool, which the returned arrays are views of; fresh arrays otherwise."""
    if width is None:
        lens = offsets[rows + 1] - offsets[rows]
        width = int(round_up(int(lens.max()), pad_multiple)) if len(rows) else 0
    if out is None:
        ids, mask = np.empty((len(rows), width), np.int32), np.empty((len(rows), width), np.int32)
    else:
        ids, mask = out.views(len(rows), width)
    if _native(native):
        _native_fill(token_ids, offsets, rows, width, pad_id, ids, mask)
        return ids, mask
    starts = offsets[rows]
    lens = offsets[rows + 1] - starts
    cols = np.arange(width, dtype=np.int64)
    real = cols[None, :] < lens[:, None]
    index = np.where(real, starts[:, None] + cols[None, :], 0)
    ids[...] = np.where(real, token_ids[index], pad_id)
    mask[...] = real
    return ids, mask


class Buffers:
    """Flat int32 ids and mask buffers of `capacity` values, lent by a BufferPool; `release` gives
    them back once nothing reads the batch's arrays any more."""

    __slots__ = ("ids", "mask", "capacity", "_pool", "_lent")

    def __init__(self, pool: BufferPool, capacity: int) -> None:
        self.ids = np.empty(capacity, np.int32)
        self.mask = np.empty(capacity, np.int32)
        self.capacity, self._pool, self._lent = capacity, pool, True  # made to be lent at once

    def views(self, rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        n = rows * width
        if n > self.capacity:
            raise ValueError(f"a [{rows}, {width}] batch does not fit buffers of {self.capacity} values")
        return self.ids[:n].reshape(rows, width), self.mask[:n].reshape(rows, width)

    def release(self) -> None:
        self._pool.release(self)


class BufferPool:
    """Reusable ids/mask buffers keyed by capacity. A request is rounded up to `base` values (the
    token budget, which every planned batch but a lone over-long record fits) or else to a power of
    two, so a handful of sizes serve a whole run and steady state allocates nothing: batches in
    flight are bounded by the channels, so are the buffers. Thread-safe (the batcher acquires, the
    writer releases)."""

    def __init__(self, base: int) -> None:
        self.base = max(1, int(base))
        self.allocated = 0  # buffer pairs ever made; flat once the run is in steady state
        self._free: dict[int, list[Buffers]] = {}
        self._lock = threading.Lock()

    def capacity_for(self, values: int) -> int:
        return self.base if values <= self.base else 1 << (int(values) - 1).bit_length()

    def acquire(self, values: int) -> Buffers:
        """Buffers holding at least `values` int32s each."""
        capacity = self.capacity_for(values)
        with self._lock:
            free = self._free.get(capacity)
            if free:
                buffers = free.pop()
                buffers._lent = True
                return buffers
            self.allocated += 1
        return Buffers(self, capacity)

    def release(self, buffers: Buffers) -> None:
        with self._lock:
            if not buffers._lent:
                raise RuntimeError("batch buffers released twice")
            buffers._lent = False
            self._free.setdefault(buffers.capacity, []).append(buffers)

    @property
    def idle(self) -> int:
        """Buffer pairs waiting in the pool."""
        with self._lock:
            return sum(len(free) for free in self._free.values())
