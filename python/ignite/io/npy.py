"""An .npy file written row by row into a `.partial` file: the header is reserved up front and
filled with the final shape only when the file is finished, so a half-written file never looks
complete. A partial file can be reopened and cut back to a committed row count (resume)."""
from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np

from ignite import _engine

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

    The rows are written by native threads (ignite._engine.FileWriter) with a pwrite at their
    offset: the copy is most of a writer's work, and would otherwise run on the thread that
    commits, or take the GIL on each hand-over. Whole blocks bypass the page cache (O_DIRECT) where
    the file system allows, and the rest leaves it once written: a streamed output is not read
    again. sync() and close() wait for every write first,
    so a commit's fsync covers all rows appended before it; a write's error (OSError with its
    errno) is raised by the next append, sync or close."""

    MAX_PENDING = 4  # appends written or queued: bounds the memory their rows hold

    def __init__(self, partial: Path, dim: int, dtype: str, rows: int | None = None) -> None:
        self.partial = partial
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.row_bytes = dim * self.dtype.itemsize
        self._tickets: collections.deque[int] = collections.deque()
        self._last = 0
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
        self._writer = _engine.FileWriter(self._fd)

    def _write_header(self) -> None:
        """The placeholder header, before the writer starts; a short write is retried, so a full
        disk raises its own errno."""
        data, at = memoryview(_header(self.dtype, 0, self.dim)), 0
        while data:
            written = os.pwrite(self._fd, data, at)
            data, at = data[written:], at + written

    def append(self, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, dtype=self.dtype)
        assert data.ndim == 2 and data.shape[1] == self.dim, data.shape
        if len(self._tickets) >= self.MAX_PENDING:
            self._writer.wait(self._tickets.popleft())
        # The array's own bytes, no copy: the writer holds a reference until they are written.
        self._last = self._writer.submit(data, HEADER_BYTES + self.rows * self.row_bytes)
        self._tickets.append(self._last)
        self.rows += data.shape[0]

    @property
    def io_cpu_seconds(self) -> float:
        """CPU time of the writing threads so far."""
        return self._writer.cpu_seconds

    def sync(self) -> None:
        if self._last:
            self._writer.wait(self._last)  # raises the first failed write's error
        self._tickets.clear()
        os.fsync(self._fd)

    def close(self) -> None:
        """Close without finishing; never raises (a failed write is a torn write, cut on resume)."""
        if self._fd >= 0:
            self._writer.close()
            self._tickets.clear()
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

