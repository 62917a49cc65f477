"""An .npy file written row by row into a `.partial` file: the header is reserved up front and
filled with the final shape only when the file is finished, so a half-written file never looks
complete. A partial file can be reopened and cut back to a committed row count (resume)."""
from __future__ import annotations

import os
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
    truncates it to that many rows (bytes past the last commit are a torn write)."""

    def __init__(self, partial: Path, dim: int, dtype: str, rows: int | None = None) -> None:
        self.partial = partial
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.row_bytes = dim * self.dtype.itemsize
        if rows is None:
            self._file = open(partial, "wb")  # noqa: SIM115 - owned until close
            self._file.write(_header(self.dtype, 0, dim))
            self.rows = 0
        else:
            size = HEADER_BYTES + rows * self.row_bytes
            self._file = open(partial, "r+b")  # noqa: SIM115
            if os.fstat(self._file.fileno()).st_size < size:
                if rows:
                    self._file.close()
                    raise OSError(f"{partial} holds fewer than the {rows} committed rows")
                self._file.write(_header(self.dtype, 0, dim))  # a crash came before the header was flushed
            self._file.truncate(size)
            self._file.seek(size)
            self.rows = rows

    def append(self, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, dtype=self.dtype)
        assert data.ndim == 2 and data.shape[1] == self.dim, data.shape
        self._file.write(memoryview(data).cast("B"))  # the array's own bytes: no copy
        self.rows += data.shape[0]

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close without finishing; never raises (a failed flush is a torn write, cut on resume)."""
        try:
            self._file.close()
        except OSError:
            pass


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

