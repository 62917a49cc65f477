"""Output sinks, chosen by the output path: `.npy` (+ `.ids.parquet`), `.parquet`, or a folder of
shards. Each takes whole windows in input order; files are written as `.partial` and renamed
only when finished, so an interrupted run leaves nothing that looks complete."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ignite.errors import UsageError
from ignite.io.npy import NpyAppender, _fsync_dir
from ignite.pipeline.window import Window

OUTPUT_KINDS = ("npy", "parquet", "dir")


def output_kind(path: Path) -> str:
    if path.suffix.lower() == ".npy":
        return "npy"
    if path.suffix.lower() == ".parquet":
        return "parquet"
    if path.suffix == "" or path.is_dir():
        return "dir"
    raise UsageError(f"output {path}: unknown extension {path.suffix!r}; use .npy, .parquet, or a folder name")


def ids_path(output: Path) -> Path:
    return output.with_name(output.name[: -len(".npy")] + ".ids.parquet") if output.suffix == ".npy" \
        else output.with_name(output.name + ".ids.parquet")


def output_files(output: Path, kind: str) -> list[Path]:
    """The finished files a run produces (to refuse overwriting them)."""
    if kind == "npy":
        return [output, ids_path(output)]
    if kind == "parquet":
        return [output]
    return sorted(output.glob("part-*")) if output.is_dir() else []


def _meta_schema(string_ids: bool) -> pa.Schema:
    return pa.schema([
        ("row", pa.int64()),
        ("id", pa.string() if string_ids else pa.int64()),
        ("file", pa.dictionary(pa.int32(), pa.string())),
        ("line", pa.int64()),
        ("status", pa.dictionary(pa.int32(), pa.string())),
    ])


def _ids(window: Window, lo: int, hi: int, string_ids: bool) -> pa.Array:
    if string_ids:
        return pa.array(window.ids[lo:hi], pa.string())
    return pa.array(np.arange(window.start_row + lo, window.start_row + hi, dtype=np.int64))


def meta_table(window: Window, files: list[str], string_ids: bool, lo: int = 0, hi: int | None = None) -> pa.Table:
    hi = len(window) if hi is None else hi
    n = hi - lo
    return pa.table({
        "row": pa.array(np.arange(window.start_row + lo, window.start_row + hi, dtype=np.int64)),
        "id": _ids(window, lo, hi, string_ids),
        "file": pa.DictionaryArray.from_arrays(pa.array(np.full(n, 0, np.int32)), pa.array([files[window.file_index]])),
        "line": pa.array(window.lines[lo:hi]),
        "status": pa.array(window.status[lo:hi], pa.string()).dictionary_encode(),
    }, schema=_meta_schema(string_ids))


class Sink(Protocol):
    rows: int

    def write(self, window: Window) -> None: ...
    def finish(self) -> list[Path]: ...
    def close(self) -> None: ...


class _ParquetPartial:
    """A parquet file written as `<path>.partial` and renamed when finished."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self._writer = pq.ParquetWriter(self.partial, schema, compression="zstd")

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def finish(self) -> None:
        self._writer.close()
        with open(self.partial, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.partial, self.path)
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        self._writer.close()


class NpySink:
    def __init__(self, output: Path, dim: int, dtype: str, files: list[str], string_ids: bool) -> None:
        self.output = output
        self.files, self.string_ids = files, string_ids
        self._npy = NpyAppender(output, dim, dtype)
        self._meta = _ParquetPartial(ids_path(output), _meta_schema(string_ids))
        self.rows = 0

    def write(self, window: Window) -> None:
        self._npy.append(window.embeddings)
        self._meta.write(meta_table(window, self.files, self.string_ids))
        self.rows += len(window)

    def finish(self) -> list[Path]:
        self._meta.finish()
        self._npy.finish()
        return [self.output, self._meta.path]

    def close(self) -> None:
        self._npy.close()
        self._meta.close()


class ParquetSink:
    def __init__(self, output: Path, dim: int, dtype: str, files: list[str], string_ids: bool) -> None:
        self.output = output
        self.dim, self.dtype = dim, np.dtype(dtype)
        self.string_ids = string_ids
        value_type = pa.float16() if self.dtype == np.float16 else pa.float32()
        schema = pa.schema([
            ("id", pa.string() if string_ids else pa.int64()),
            ("embedding", pa.list_(value_type, dim)),
            ("status", pa.dictionary(pa.int32(), pa.string())),
        ])
        self._file = _ParquetPartial(output, schema)
        self._schema = schema
        self.rows = 0

    def write(self, window: Window) -> None:
        flat = pa.array(np.ascontiguousarray(window.embeddings, self.dtype).reshape(-1))
        table = pa.table({
            "id": _ids(window, 0, len(window), self.string_ids),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, self.dim),
            "status": pa.array(window.status, pa.string()).dictionary_encode(),
        }, schema=self._schema)
        self._file.write(table)
        self.rows += len(window)

    def finish(self) -> list[Path]:
        self._file.finish()
        return [self.output]

    def close(self) -> None:
        self._file.close()


class ShardSink:
    """A folder of shards `part-00000.npy` + `part-00000.parquet` (row metadata) of `shard_rows`
    rows each (the last may be shorter)."""

    def __init__(self, output: Path, dim: int, dtype: str, files: list[str], string_ids: bool, shard_rows: int) -> None:
        output.mkdir(parents=True, exist_ok=True)
        self.output, self.dim, self.dtype = output, dim, dtype
        self.files, self.string_ids, self.shard_rows = files, string_ids, shard_rows
        self.rows = 0
        self.finished: list[Path] = []
        self._npy: NpyAppender | None = None
        self._meta: _ParquetPartial | None = None

    def _open_shard(self) -> None:
        stem = self.output / f"part-{self.rows // self.shard_rows:05d}"
        self._npy = NpyAppender(stem.with_suffix(".npy"), self.dim, self.dtype)
        self._meta = _ParquetPartial(stem.with_suffix(".parquet"), _meta_schema(self.string_ids))

    def _seal(self) -> None:
        assert self._npy is not None and self._meta is not None
        self._meta.finish()
        self._npy.finish()
        self.finished += [self._npy.path, self._meta.path]
        self._npy = self._meta = None

    def write(self, window: Window) -> None:
        lo = 0
        while lo < len(window):
            if self._npy is None:
                self._open_shard()
            assert self._npy is not None and self._meta is not None
            take = min(len(window) - lo, self.shard_rows - self._npy.rows)
            self._npy.append(window.embeddings[lo: lo + take])
            self._meta.write(meta_table(window, self.files, self.string_ids, lo, lo + take))
            lo += take
            self.rows += take
            if self._npy.rows == self.shard_rows:
                self._seal()

    def finish(self) -> list[Path]:
        if self._npy is not None:
            self._seal()
        return self.finished

    def close(self) -> None:
        if self._npy is not None and self._meta is not None:
            self._npy.close()
            self._meta.close()


def open_sink(output: Path, kind: str, dim: int, dtype: str, files: list[str], string_ids: bool,
              shard_rows: int) -> Sink:
    if kind == "npy":
        return NpySink(output, dim, dtype, files, string_ids)
    if kind == "parquet":
        return ParquetSink(output, dim, dtype, files, string_ids)
    return ShardSink(output, dim, dtype, files, string_ids, shard_rows)
