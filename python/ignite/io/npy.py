"""An .npy file written row by row into a `.partial` file: the header is reserved up front and
filled with the final shape only when the file is finished, so a half-written file never looks
complete. A partial file can be reopened and cut back to a committed row count (resume)."""
from __future__ import annotations

import collections
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

HEADER_BYTES = 128  # room for any 2-D shape; numpy pads headers to a multiple of 64


def _header(dtype: np.dtype, rows: int, dim: int) -> bytes:
    desc = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (rows, dim)}
    text = repr(desc).encode("latin1")
    body_len = HEADER_BYTES - 10
    text = text + b" " * (body_len - len(text) - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + text


class NpyAppender:
    """Appends float rows to `partial`. With `rows` given, reopens an existing partial file and
    truncates it to that many rows (bytes past the last commit are a torn write).

    Each append is written by one of WRITE_THREADS threads with its own pwrite at its rows'
    offset: copying the rows into the page cache is most of a writer's work and would otherwise
    run on the one thread that commits. sync() and close() wait for every write first, so a
    commit's fsync covers all rows appended before it; a write's error is raised by the next
    append, sync or close."""

    WRITE_THREADS = 2
    MAX_PENDING = 4  # appends written or queued: bounds the memory their rows hold

    def __init__(self, partial: Path, dim: int, dtype: str, rows: int | None = None) -> None:
        self.partial = partial
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.row_bytes = dim * self.dtype.itemsize
        self._pending: collections.deque[Future[None]] = collections.deque()
        self._pool: ThreadPoolExecutor | None = None
        if rows is None:
            self._fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            self.rows = 0
            self._write_header()
        else:
            size = HEADER_BYTES + rows * self.row_bytes
            self._fd = os.open(partial, os.O_RDWR)
            try:
                if os.fstat(self._fd).st_size < size:
                    if rows:
                        raise OSError(f"{partial} holds fewer than the {rows} committed rows")
                    self._write_header()  # a crash came before the header was flushed
                os.ftruncate(self._fd, size)
            except BaseException:
                os.close(self._fd)
                raise
            self.rows = rows

    def _write_header(self) -> None:
        self._pwrite(memoryview(_header(self.dtype, 0, self.dim)), 0)

    def _pwrite(self, data: memoryview, offset: int) -> None:
        """All of `data` at `offset` (the I/O threads' work; the GIL is released in the call)."""
        start, size = offset, len(data)
        while data:
            written = os.pwrite(self._fd, data, offset)
            data, offset = data[written:], offset + written
        self._release(max(HEADER_BYTES, start - 2 * size), start)

    def _release(self, lo: int, hi: int) -> None:
        """Hand the rows in [lo, hi) back to the kernel. A streamed output is not read again, and
        its page cache would grow with the file: terabytes for a big corpus, evicting what is
        read. Each range is advised twice, by the next two writes: the first starts its writeback,
        the second drops its pages once clean (dirty pages are never dropped). The next writes then
        reuse warm pages, where fresh ones cost a fault each (4 µs a record on a VM that returns
        freed memory to its host). fsync at commit still makes every row durable."""
        if hi > lo and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd, lo, hi - lo, os.POSIX_FADV_DONTNEED)

    def append(self, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, dtype=self.dtype)
        assert data.ndim == 2 and data.shape[1] == self.dim, data.shape
        if len(self._pending) >= self.MAX_PENDING:
            self._pending.popleft().result()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.WRITE_THREADS, thread_name_prefix="ignite-npy")
        # The array's own bytes, no copy; the task's reference keeps them alive until written.
        offset = HEADER_BYTES + self.rows * self.row_bytes
        self._pending.append(self._pool.submit(self._pwrite, memoryview(data).cast("B"), offset))
        self.rows += data.shape[0]

    def _drain(self) -> None:
        """Wait for every write; raise the first one's error."""
        while self._pending:
            self._pending.popleft().result()

    def sync(self) -> None:
        self._drain()
        os.fsync(self._fd)

    def close(self) -> None:
        """Close without finishing; never raises (a failed write is a torn write, cut on resume)."""
        try:
            self._drain()
        except OSError:
            pass
        finally:
            self._pending.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def write_final_header(partial: Path, dim: int, dtype: str, rows_in_header: int | None = None) -> int:
    """Write the real header into a closed partial file and fsync it; its row count (from its
    size). `rows_in_header` overrides the count written: only the fault hook of the tests uses it."""
    dt = np.dtype(dtype)
    with open(partial, "r+b") as f:
        body = os.fstat(f.fileno()).st_size - HEADER_BYTES
        rows, rest = divmod(body, dim * dt.itemsize)
        if rest:
            raise OSError(f"{partial}: {body} bytes of rows is not a whole number of rows")
        f.write(_header(dt, rows if rows_in_header is None else rows_in_header, dim))
        f.flush()
        os.fsync(f.fileno())
    return rows


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

