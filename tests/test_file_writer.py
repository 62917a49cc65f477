"""ignite._engine.FileWriter from Python: the bytes of an array dropped right after submit still
land (the writer holds it), on the O_DIRECT path and through the page cache, and a failed write
raises OSError with its errno at the next call."""
from __future__ import annotations

import errno
import gc
import os
import resource
from pathlib import Path

import numpy as np
import pytest

from ignite import _engine


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "page-cache"])
def test_submitted_arrays_are_kept_alive_until_written(tmp_path: Path, direct: bool) -> None:
    rng = np.random.default_rng(5)
    chunks = [rng.random((int(rng.integers(1, 3000)), 384), dtype=np.float32) for _ in range(30)]
    fd = os.open(tmp_path / "out.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    writer = _engine.FileWriter(fd, direct=direct)
    assert writer.direct is False or direct  # True only where asked and the file system allows it
    offset, last = 128, 0  # rows after an .npy header: no range starts on a block
    os.pwrite(fd, b"h" * offset, 0)
    for chunk in chunks:
        last = writer.submit(chunk.copy(), offset)  # the copy's only reference is the writer's
        offset += chunk.nbytes
        gc.collect()
    writer.wait(last)
    writer.close()
    os.close(fd)
    assert (tmp_path / "out.bin").read_bytes() == b"h" * 128 + b"".join(c.tobytes() for c in chunks)


def test_a_failed_write_raises_oserror_with_errno(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    fd = os.open(tmp_path / "out.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    writer = _engine.FileWriter(fd)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, hard))  # Python ignores SIGXFSZ: EFBIG instead
        ticket = writer.submit(np.zeros(1 << 15, np.float32), 0)
        with pytest.raises(OSError) as failed:
            writer.wait(ticket)
        assert failed.value.errno == errno.EFBIG
        with pytest.raises(OSError):
            writer.submit(np.zeros(4, np.float32), 1 << 17)  # the writer stays failed
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        writer.close()
        os.close(fd)


def test_non_contiguous_buffers_are_refused(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "out.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    writer = _engine.FileWriter(fd)
    try:
        with pytest.raises(ValueError, match="contiguous"):
            writer.submit(np.zeros((8, 8), np.float32)[:, ::2], 0)
    finally:
        writer.close()
        os.close(fd)
