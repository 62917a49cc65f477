"""An .npy file written row by row: the header is reserved up front and filled with the final
shape only when the file is finished, so a half-written file never looks complete."""
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
    """Appends float rows to `<path>.partial`; `finish` writes the header and renames it."""

    def __init__(self, path: Path, dim: int, dtype: str) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.dim = dim
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self._file = open(self.partial, "wb")  # noqa: SIM115 - owned until finish/abort
        self._file.write(_header(self.dtype, 0, dim))

    def append(self, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, dtype=self.dtype)
        assert data.ndim == 2 and data.shape[1] == self.dim, data.shape
        self._file.write(data.tobytes())
        self.rows += data.shape[0]

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def finish(self) -> None:
        self._file.seek(0)
        self._file.write(_header(self.dtype, self.rows, self.dim))
        self.sync()
        self._file.close()
        os.replace(self.partial, self.path)
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
