"""Output sinks, chosen by the output path: `.npy` (+ `.ids.parquet`), `.parquet`, or a folder of
shards. Each takes whole windows in input order.

While a run goes on, its data lives in the work folder (io/manifest.py): embedding rows in
`<name>.partial` (an .npy with a placeholder header), row metadata in a `<name>.meta` log. Both
are append-only and are cut back to the committed sizes on resume. A final file appears only when
it is complete (a shard: once full and committed), written under a temporary name, fsynced and
renamed, so an interrupted run leaves nothing that looks finished. Finishing can be redone after
a crash: the inputs of a final file are removed only after it is in place, and a final file
whose inputs are gone is already done."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ignite import faults
from ignite.errors import OutputError, UsageError
from ignite.io.manifest import RUN_FILE, Committed
from ignite.io.metadata import ROW_GROUP_ROWS, MetaLog, MetaRows, meta_schema, read_meta_log
from ignite.io.npy import HEADER_BYTES, NpyAppender, fsync_dir, write_final_header
from ignite.io.verify import SHARD_NAME, expect_rows, npy_rows, parquet_rows
from ignite.rows.window import Window

OUTPUT_KINDS = ("npy", "parquet", "dir")
# Schema metadata of every finished Parquet file: the run record (inputs with sizes and times,
# options) it was made from, so that a later --resume can tell a stale output from a complete one.
PROVENANCE_KEY = b"ignite.run"


def output_kind(path: Path) -> str:
    if path.suffix.lower() == ".npy":
        return "npy"
    if path.suffix.lower() == ".parquet":
        return "parquet"
    if path.suffix == "" or path.is_dir():
        return "dir"
    raise UsageError(f"output {path}: unknown extension {path.suffix!r}; use .npy, .parquet, or a folder name")


def check_output_path(output: Path, kind: str, inputs: Iterable[str]) -> None:
    """Refuse outputs that are not what they seem, before anything is written: a folder where a
    file is meant, a file where a folder is meant, an output that is one of the `inputs` (their
    resolved paths), a shard folder that already holds files Ignite did not write (they would be
    mixed with ours)."""
    finals = [output, ids_path(output)] if kind == "npy" else [output]
    if kind != "dir":
        for path in finals:
            if path.is_dir():
                raise UsageError(f"output {path} is a folder, but its {path.suffix} extension names a file; "
                                 f"remove the folder or name another output")
    elif output.exists() and not output.is_dir():
        raise UsageError(f"output {output} is a file, but a name without .npy/.parquet means a folder of shards; "
                         f"name a folder, or give the file an extension")
    real_inputs = set(inputs)
    for path in finals:
        if os.path.realpath(path) in real_inputs:
            raise UsageError(f"output {path} is also an input; write the embeddings to another file")
    if kind == "dir" and output.is_dir():
        foreign = sorted(p.name for p in output.iterdir() if not SHARD_NAME.match(p.name))
        if foreign:
            raise UsageError(f"output folder {output} holds files Ignite did not write ({', '.join(foreign[:3])}"
                             f"{', ...' if len(foreign) > 3 else ''}); give an empty or new folder")


def ids_path(output: Path) -> Path:
    return output.with_name(output.name[: -len(".npy")] + ".ids.parquet") if output.suffix == ".npy" \
        else output.with_name(output.name + ".ids.parquet")


def report_path(output: Path) -> Path:
    """The run report beside the output: emb.npy -> emb.report.json, out/ -> out.report.json."""
    return output.with_name(output.name[: -len(".npy")] + ".report.json") if output.suffix == ".npy" \
        else output.with_name(output.name + ".report.json")


def output_files(output: Path, kind: str) -> list[Path]:
    """The finished files a run produces (to refuse overwriting them)."""
    if kind == "npy":
        return [output, ids_path(output)]
    if kind == "parquet":
        return [output]
    return sorted(output.glob("part-*")) if output.is_dir() else []


def embedding_schema(dim: int, dtype: np.dtype, string_ids: bool) -> pa.Schema:
    """The schema of an OUT.parquet output."""
    return pa.schema([
        ("id", pa.string() if string_ids else pa.int64()),
        ("embedding", pa.list_(pa.float16() if dtype == np.float16 else pa.float32(), dim)),
        ("status", pa.dictionary(pa.int32(), pa.string())),
    ])


def write_parquet(tmp: Path, schema: pa.Schema, tables: Iterable[pa.Table]) -> int:
    """Write `tables` to `tmp` and fsync it; its row count. `install` then renames it."""
    rows, pending, pending_rows = 0, [], 0
    # Dictionary pages only for the columns whose values repeat: on unique ids, row numbers and
    # vectors parquet builds one and abandons it, which took twice the time for a larger file.
    repeating = [name for name in ("file", "status") if name in schema.names]
    writer = pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=repeating)
    try:
        for table in tables:
            pending.append(table)
            pending_rows += len(table)
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending))
                rows, pending, pending_rows = rows + pending_rows, [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending))
            rows += pending_rows
    finally:
        writer.close()
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    return rows


def install(*moves: tuple[Path, Path]) -> None:
    """Rename verified temporary files to their final names (same filesystem) durably."""
    for tmp, final in moves:
        os.replace(tmp, final)
    for folder in {final.parent for _, final in moves}:
        fsync_dir(folder)


def _with_provenance(schema: pa.Schema, work: Path) -> pa.Schema:
    """`schema` carrying the run record of the work folder `work`."""
    try:
        return schema.with_metadata({PROVENANCE_KEY: (work / RUN_FILE).read_bytes()})
    except FileNotFoundError:
        return schema


def read_provenance(path: Path) -> bytes | None:
    """The run record a finished Parquet file of ours was made from; None if it has none."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):
        return None
    return metadata.get(PROVENANCE_KEY)


class _Segment:
    """The rows of one final .npy (the whole output, or one shard) under construction."""

    def __init__(self, work: Path, name: str, dim: int, dtype: str, files: Sequence[str], rows: int = 0,
                 meta_bytes: int | None = None) -> None:
        """`meta_bytes` None: a new segment; else resume it at `rows` rows and that log size."""
        self.partial, self.log = work / f"{name}.partial", work / f"{name}.meta"
        self.rows = rows
        if meta_bytes is None or not (rows or meta_bytes):
            # Nothing committed: start over, whatever a crash left (even a file created, not the other).
            self.npy, self.meta = NpyAppender(self.partial, dim, dtype), MetaLog(self.log, files)
        elif self.partial.exists() and self.log.exists():
            self.npy = NpyAppender(self.partial, dim, dtype, rows)
            self.meta = MetaLog(self.log, files, meta_bytes)
        else:
            raise OutputError(f"{self.partial} or {self.log} is missing: the work folder {work} is damaged; "
                              f"pass --overwrite to start over")

    def append(self, embeddings: np.ndarray, meta: MetaRows) -> None:
        self.npy.append(embeddings)
        self.meta.append(meta)
        self.rows += len(meta)

    def sync(self) -> int:
        self.npy.sync()
        self.meta.sync()
        return self.meta.size

    def close(self) -> None:
        self.npy.close()
        self.meta.close()


def _read_rows(path: Path, dim: int, dtype: str, rows: int, header: int = HEADER_BYTES,
               chunk: int = 65536) -> Iterator[np.ndarray]:
    """The first `rows` rows of an .npy (final or partial, whose header we wrote), in chunks."""
    if rows <= 0:
        return
    data = np.memmap(path, np.dtype(dtype), "r", offset=header, shape=(rows, dim))
    for lo in range(0, rows, chunk):
        yield np.asarray(data[lo: lo + chunk], dtype=np.float32)


def _final_rows(path: Path, rows: int, chunk: int = 65536) -> Iterator[np.ndarray]:
    """The first `rows` rows of a finished .npy (numpy reads its own header), in chunks."""
    data = np.load(path, mmap_mode="r")
    for lo in range(0, rows, chunk):
        yield np.asarray(data[lo: min(rows, lo + chunk)], dtype=np.float32)


def _segment_rows(partial: Path, final: Path, dim: int, dtype: str, rows: int) -> Iterator[np.ndarray]:
    """A segment's first `rows` committed rows: from its partial file, or from its final .npy once
    sealed (a run that died while finishing its outputs)."""
    if rows > 0 and not partial.exists() and final.exists():
        return _final_rows(final, rows)
    return _read_rows(partial, dim, dtype, rows)


def _seal(work: Path, name: str, final_npy: Path, final_meta: Path, dim: int, dtype: str, string_ids: bool,
          rows: int) -> None:
    """Turn a closed segment of `rows` committed rows into its final .npy and metadata parquet:
    both are written in full, counted, and renamed into place only when they hold exactly those
    rows. A no-op once done; redone whole after a crash part-way (the log goes last)."""
    partial, log = work / f"{name}.partial", work / f"{name}.meta"
    if not log.exists():
        if not (final_npy.exists() and final_meta.exists()):
            raise OutputError(f"cannot finish {final_npy}: its data is missing from the work folder {work}; "
                              f"pass --overwrite to start over")
        return
    tmp_meta = work / f".{final_meta.name}.tmp"
    expect_rows(log, write_parquet(tmp_meta, _with_provenance(meta_schema(string_ids), work),
                                    read_meta_log(log)), rows)
    moves = [(tmp_meta, final_meta)]
    npy = final_npy  # when a crash came after the .npy was renamed and before the log was removed
    if partial.exists():
        write_final_header(partial, dim, dtype, rows - 1 if faults.active("npy-header-rows") else None)
        moves.append((partial, final_npy))
        npy = partial
    expect_rows(final_npy, npy_rows(npy, dim, dtype), rows)
    expect_rows(final_meta, parquet_rows(tmp_meta), rows)
    install(*moves)
    log.unlink()


class Sink(Protocol):
    rows: int

    def write(self, window: Window) -> None: ...
    def sync(self) -> int:
        """fsync all that was written; the committed size of the open metadata log."""
        ...
    def after_commit(self) -> None:
        """Seal what the last commit completed (full shards)."""
        ...
    def finish(self) -> list[Path]: ...
    def close(self) -> None: ...
    def committed(self, rows: int) -> Iterator[np.ndarray]:
        """The embeddings of the first `rows` (committed) rows, in order, as float32 chunks."""
        ...


class _OneSegmentSink:
    """An output built from one segment (all rows in one .partial and one metadata log)."""

    def __init__(self, output: Path, work: Path, dim: int, dtype: str, files: list[str], string_ids: bool,
                 start: Committed | None) -> None:
        self.output, self.work, self.dim, self.dtype = output, work, dim, np.dtype(dtype)
        self.files, self.string_ids = files, string_ids
        self.rows = start.rows if start else 0
        self._seg = None if start and start.done else \
            _Segment(work, output.name, dim, dtype, files, self.rows, start.meta_bytes if start else None)

    def write(self, window: Window) -> None:
        assert self._seg is not None
        self._seg.append(window.embeddings, MetaRows.of(window, 0, len(window), self.string_ids))
        self.rows += len(window)

    def sync(self) -> int:
        return self._seg.sync() if self._seg else 0

    def after_commit(self) -> None:
        pass

    def committed(self, rows: int) -> Iterator[np.ndarray]:
        yield from _segment_rows(self.work / f"{self.output.name}.partial", self.output, self.dim, str(self.dtype),
                                 rows)

    def close(self) -> None:
        if self._seg:
            self._seg.close()


class NpySink(_OneSegmentSink):
    def finish(self) -> list[Path]:
        self.close()
        _seal(self.work, self.output.name, self.output, ids_path(self.output), self.dim, str(self.dtype),
              self.string_ids, self.rows)
        return [self.output, ids_path(self.output)]


class ParquetSink(_OneSegmentSink):
    def __init__(self, output: Path, work: Path, dim: int, dtype: str, files: list[str], string_ids: bool,
                 start: Committed | None) -> None:
        super().__init__(output, work, dim, dtype, files, string_ids, start)
        self._schema = embedding_schema(dim, self.dtype, string_ids)

    def _tables(self, partial: Path, log: Path) -> Iterator[pa.Table]:
        rows = (partial.stat().st_size - HEADER_BYTES) // (self.dim * self.dtype.itemsize)
        emb = np.memmap(partial, self.dtype, "r", offset=HEADER_BYTES, shape=(rows, self.dim)) if rows \
            else np.zeros((0, self.dim), self.dtype)
        at = 0
        for meta in read_meta_log(log):
            block = np.asarray(emb[at: at + len(meta)])
            at += len(meta)
            yield pa.table({
                "id": meta.column("id"),
                "embedding": pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), self.dim),
                "status": meta.column("status"),
            }, schema=self._schema)
        if at != rows:
            raise OutputError(f"{partial} and {log} disagree on the row count; pass --overwrite to start over")

    def committed(self, rows: int) -> Iterator[np.ndarray]:
        if rows > 0 and not (self.work / f"{self.output.name}.partial").exists() and self.output.exists():
            # Died while finishing, after the table replaced the partial file: the rows are in it.
            for batch in pq.ParquetFile(self.output).iter_batches(columns=["embedding"]):
                flat = batch.column(0).values.to_numpy(zero_copy_only=False)
                yield flat.reshape(-1, self.dim).astype(np.float32, copy=False)
            return
        yield from super().committed(rows)

    def finish(self) -> list[Path]:
        self.close()
        partial, log = self.work / f"{self.output.name}.partial", self.work / f"{self.output.name}.meta"
        if partial.exists() and log.exists():
            tmp = self.work / f".{self.output.name}.tmp"
            write_parquet(tmp, _with_provenance(self._schema, self.work), self._tables(partial, log))
            expect_rows(self.output, parquet_rows(tmp), self.rows)
            install((tmp, self.output))
        log.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
        if not self.output.exists():
            raise OutputError(f"cannot finish {self.output}: its data is missing from the work folder "
                              f"{self.work}; pass --overwrite to start over")
        return [self.output]


class ShardSink:
    """A folder of shards `part-00000.npy` + `part-00000.parquet` (row metadata) of `shard_rows`
    rows each (the last may be shorter). A shard is sealed once a commit covers all its rows."""

    def __init__(self, output: Path, work: Path, dim: int, dtype: str, files: list[str], string_ids: bool,
                 shard_rows: int, start: Committed | None) -> None:
        output.mkdir(parents=True, exist_ok=True)
        self.output, self.work, self.dim, self.dtype = output, work, dim, dtype
        self.files, self.string_ids, self.shard_rows = files, string_ids, shard_rows
        self.rows = start.rows if start else 0
        self._filled: list[int] = []  # shards full but not yet covered by a commit
        # A crash between a commit and the seal leaves committed full shards unsealed.
        for shard in range(self.rows // shard_rows):
            self._seal(shard, shard_rows)
        self._seg: _Segment | None = None
        if not (start and start.done) and self.rows % shard_rows:
            self._seg = _Segment(work, self._name(self.rows // shard_rows), dim, dtype, files, self.rows % shard_rows,
                                 start.meta_bytes if start else None)
        elif not (start and start.done):
            self._discard(self.rows // shard_rows)  # a shard begun after the last commit

    def _name(self, shard: int) -> str:
        return f"part-{shard:05d}.npy"

    def committed(self, rows: int) -> Iterator[np.ndarray]:
        full, rest = divmod(rows, self.shard_rows)
        for shard in range(full):  # sealed when the sink opened
            yield from _final_rows(self.output / self._name(shard), self.shard_rows)
        name = self._name(full)
        yield from _segment_rows(self.work / f"{name}.partial", self.output / name, self.dim, self.dtype, rest)

    def _discard(self, shard: int) -> None:
        for suffix in (".partial", ".meta"):
            (self.work / f"{self._name(shard)}{suffix}").unlink(missing_ok=True)

    def _seal(self, shard: int, rows: int) -> None:
        name = self._name(shard)
        _seal(self.work, name, self.output / name, self.output / f"part-{shard:05d}.parquet", self.dim, self.dtype,
              self.string_ids, rows)

    def write(self, window: Window) -> None:
        lo = 0
        while lo < len(window):
            if self._seg is None:
                self._seg = _Segment(self.work, self._name(self.rows // self.shard_rows), self.dim, self.dtype, self.files)
            take = min(len(window) - lo, self.shard_rows - self._seg.rows)
            self._seg.append(window.embeddings[lo: lo + take],
                             MetaRows.of(window, lo, lo + take, self.string_ids))
            lo += take
            self.rows += take
            if self._seg.rows == self.shard_rows:
                self._seg.sync()
                self._seg.close()
                self._filled.append((self.rows - 1) // self.shard_rows)
                self._seg = None

    def sync(self) -> int:
        return self._seg.sync() if self._seg else 0

    def after_commit(self) -> None:
        for shard in self._filled:
            self._seal(shard, self.shard_rows)
        self._filled = []

    def finish(self) -> list[Path]:
        self.close()
        self.after_commit()
        if self.rows % self.shard_rows:
            self._seal(self.rows // self.shard_rows, self.rows % self.shard_rows)
        else:
            self._discard(self.rows // self.shard_rows)
        return sorted(self.output.glob("part-*"))

    def close(self) -> None:
        if self._seg is not None:
            self._seg.close()


def open_sink(output: Path, kind: str, work: Path, dim: int, dtype: str, files: list[str], string_ids: bool,
              shard_rows: int, start: Committed | None = None) -> Sink:
    """`start`: the commit to resume from; None for a new run."""
    if kind == "npy":
        return NpySink(output, work, dim, dtype, files, string_ids, start)
    if kind == "parquet":
        return ParquetSink(output, work, dim, dtype, files, string_ids, start)
    return ShardSink(output, work, dim, dtype, files, string_ids, shard_rows, start)
