"""Proof before success: the finished files are opened and counted (the .npy header's shape
against the file size, Parquet footers' row counts) and must hold exactly the committed rows.
A mismatch is a VerificationError (exit 1, the work folder kept), never a run that exits 0."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ignite.errors import VerificationError

SHARD_NAME = re.compile(r"part-(\d{5})\.(npy|parquet)$")


def npy_rows(path: Path, dim: int, dtype: str) -> int:
    """Rows of an .npy whose header must say (rows, dim) of `dtype` and whose size must match."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            shape, fortran, found = read_header(f)
            offset = f.tell()
            size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError) as exc:
        raise VerificationError(f"{path} is not a readable .npy ({exc})") from None
    if fortran or len(shape) != 2 or shape[1] != dim or found != np.dtype(dtype):
        raise VerificationError(f"{path} has shape {shape} of {found}, expected (rows, {dim}) of {dtype}")
    rows = int(shape[0])
    if size != offset + rows * dim * np.dtype(dtype).itemsize:
        raise VerificationError(f"{path}: its header says {rows:,} rows but the file holds "
                                f"{(size - offset) / (dim * np.dtype(dtype).itemsize):,.2f} rows of data")
    return rows


def parquet_rows(path: Path) -> int:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError) as exc:
        raise VerificationError(f"{path} is not a readable Parquet file ({exc})") from None


def expect_rows(path: Path, rows: int, expected: int) -> None:
    if rows != expected:
        raise VerificationError(f"{path} holds {rows:,} rows where {expected:,} were committed")


def shard_files(folder: Path) -> list[tuple[Path, Path]]:
    """The (npy, parquet) pairs of a shard folder, numbered 0, 1, 2, ... without a gap."""
    found: dict[int, dict[str, Path]] = {}
    for path in folder.iterdir():
        if (m := SHARD_NAME.match(path.name)) is not None:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = path
    pairs = []
    for n in range(len(found)):
        if set(found.get(n, {})) != {"npy", "parquet"}:
            raise VerificationError(f"{folder}: shard part-{n:05d} is missing or incomplete "
                                    f"(shards found: {sorted(found)})")
        pairs.append((found[n]["npy"], found[n]["parquet"]))
    return pairs


def verify_finished(kind: str, output: Path, ids: Path | None, rows: int, dim: int, dtype: str) -> str:
    """Open every finished file of an output and check it holds the `rows` committed rows; what
    was verified, in words for the summary line."""
    if kind == "npy":
        assert ids is not None
        expect_rows(output, npy_rows(output, dim, dtype), rows)
        expect_rows(ids, parquet_rows(ids), rows)
        return f"{output.name} {rows:,} x {dim} {dtype} and {ids.name} {rows:,} rows"
    if kind == "parquet":
        expect_rows(output, parquet_rows(output), rows)
        return f"{output.name} {rows:,} rows"
    total = 0
    pairs = shard_files(output)
    for npy, meta in pairs:
        n = npy_rows(npy, dim, dtype)
        expect_rows(meta, parquet_rows(meta), n)
        total += n
    if total != rows:
        raise VerificationError(f"the shards of {output} hold {total:,} rows where {rows:,} were committed")
    return f"{len(pairs)} shard(s) of {output} {rows:,} x {dim} {dtype}, with their metadata"
