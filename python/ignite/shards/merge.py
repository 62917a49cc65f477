"""`ignite merge OUT`: prove every shard complete and of one job, then join them in global row
order: OUT/manifest.json (global row = row_offset + local row), optionally one output file equal
to a single run's, and the merged index with global row ids."""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ignite.errors import UsageError
from ignite.io.lock import OutputLocks
from ignite.io.manifest import WorkDir, atomic_write
from ignite.io.npy import NpyAppender, write_final_header
from ignite.io.outputs import embedding_schema, ids_path, install, meta_schema, output_kind, write_parquet
from ignite.io.verify import expect_rows, npy_rows, parquet_rows, shard_files
from ignite.shards.env import shard_name
from ignite.shards.run import read_record, record_path

log = logging.getLogger("ignite")

MANIFEST = "manifest.json"
CHUNK_ROWS = 1 << 16
NAME = re.compile(r"^shard-(\d{5})-of-(\d{5})")


@dataclass
class Shard:
    name: str
    folder: Path
    record: dict[str, Any]
    offset: int  # global row of its first row
    parts: list[Path]  # part-*.npy in order

    def chunks(self) -> Iterator[tuple[np.ndarray, pa.Table]]:
        """(embeddings, row metadata with global rows and ids) in chunks, in order."""
        for npy in self.parts:
            data = np.load(npy, mmap_mode="r")
            meta = pq.read_table(npy.with_suffix(".parquet"))
            for lo in range(0, len(meta), CHUNK_ROWS):
                yield np.asarray(data[lo: lo + CHUNK_ROWS]), self._global(meta.slice(lo, CHUNK_ROWS))

    def _global(self, meta: pa.Table) -> pa.Table:
        meta = meta.set_column(0, "row", pc.add(meta.column("row"), self.offset))
        if not self.record["string_ids"]:  # default ids are row numbers
            meta = meta.set_column(1, "id", pc.add(meta.column("id"), self.offset))
        return meta


def find_shards(root: Path) -> list[Shard]:
    """Every shard of the job in OUT, checked; refuses naming the first shard missing,
    unfinished or from another run."""
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder of shards; give the --output folder of `ignite embed --shard`")
    counts = {int(m.group(2)) for p in root.iterdir() if (m := NAME.match(p.name))}
    if not counts:
        raise UsageError(f"{root} holds no shards (shard-0000I-of-0000N); run `ignite embed --shard I/N "
                         f"--output {root}`")
    if len(counts) > 1:
        raise UsageError(f"{root} holds shards of jobs with {' and '.join(map(str, sorted(counts)))} shards; "
                         f"move the other job's shards elsewhere")
    count = counts.pop()
    shards: list[Shard] = []
    offset = 0
    for i in range(count):
        name = shard_name(i, count)
        folder = root / name
        record = read_record(record_path(root, name))
        if record is None:
            if WorkDir(folder).exists() or folder.exists():
                raise UsageError(f"shard {name} is unfinished ({folder}); rerun its task with --resume")
            raise UsageError(f"shard {name} is missing: run its task (`ignite embed ... --shard {i}/{count} "
                             f"--output {root}`)")
        if shards and (record["plan"], record["config"]) != (shards[0].record["plan"], shards[0].record["config"]):
            what = "input plan" if record["plan"] != shards[0].record["plan"] else "options (model, field, dtype ...)"
            raise UsageError(f"shard {name} is from another run: its {what} differ from {shards[0].name}'s; "
                             f"rerun it with the job's command and --overwrite")
        parts = [npy for npy, _ in shard_files(folder)] if folder.is_dir() else []  # none for an empty shard
        rows = sum(parquet_rows(p.with_suffix(".parquet")) for p in parts)
        if rows != record["rows"]:
            raise UsageError(f"shard {name}: its files hold {rows:,} rows, its record {record['rows']:,}; "
                             f"rerun it with --overwrite")
        shards.append(Shard(name, folder, record, offset, parts))
        offset += rows
    return shards


def merge_shards(root: Path, output: Path | None, overwrite: bool, index: Path | None,
                 on_disk: bool | None) -> str:
    shards = find_shards(root)
    total = sum(s.record["rows"] for s in shards)
    manifest = {"format": 1, "rows": total, "plan": shards[0].record["plan"], "config": shards[0].record["config"],
                "shards": [{"name": s.name, "rows": s.record["rows"], "row_offset": s.offset,
                            "parts": [p.name for p in s.parts]} for s in shards]}
    folders = [s.record.get("index") for s in shards]
    if index is None and any(folders):
        index = Path(next(f for f in folders if f)).parent
    if index is not None and (bare := next((s for s in shards if not s.record.get("index")), None)) is not None:
        raise UsageError(f"shard {bare.name} was run without --index; rerun it with --index {index} --overwrite")
    written: list[object] = []
    # Two merges of one job at once would write the same files: the second refuses, naming the first.
    with OutputLocks([root / MANIFEST, *(p for p in (output, index) if p is not None)]).acquire():
        if output is not None:
            written += _write_output(shards, output, overwrite)
        if index is not None:
            info = _merge_index(shards, index, output, on_disk)
            manifest["index"] = str(index.resolve())
            recall = info.get("recall", {}).get("recall_at_10", "n/a")
            written.append(f"{index} ({info['count']:,} vectors, recall@10 {recall} at nprobe {info.get('nprobe', 0)})")
        atomic_write(root / MANIFEST, json.dumps(manifest, indent=1).encode())
    return f"merged {len(shards)} shards, {total:,} rows -> {', '.join(map(str, [root / MANIFEST, *written]))}"


def _write_output(shards: list[Shard], output: Path, overwrite: bool) -> list[Path]:
    kind = output_kind(output)
    if kind == "dir":
        raise UsageError(f"merge --output {output}: give a .npy or .parquet file (the shards are the folder form)")
    finals = [output, ids_path(output)] if kind == "npy" else [output]
    if not overwrite and (taken := next((p for p in finals if p.exists()), None)) is not None:
        raise UsageError(f"output {taken} already exists; pass --overwrite to replace it")
    first = shards[0]
    string_ids = first.record["string_ids"]
    dtype = np.dtype(first.record["output_dtype"])
    dim = next((np.load(p, mmap_mode="r").shape[1] for s in shards for p in s.parts), 0)
    total = sum(s.record["rows"] for s in shards)
    # Written beside the finals under temporary names, counted, then renamed: no success without proof.
    if kind == "npy":
        partial = output.with_name(f".{output.name}.partial")
        tmp_ids = output.with_name(f".{ids_path(output).name}.tmp")
        npy = NpyAppender(partial, dim, str(dtype))

        def metas() -> Iterator[pa.Table]:
            for s in shards:
                for emb, meta in s.chunks():
                    npy.append(emb)
                    yield meta

        try:
            write_parquet(tmp_ids, meta_schema(string_ids), metas())
            npy.sync()
        finally:
            npy.close()
        write_final_header(partial, dim, str(dtype))
        expect_rows(output, npy_rows(partial, dim, str(dtype)), total)
        expect_rows(ids_path(output), parquet_rows(tmp_ids), total)
        install((tmp_ids, ids_path(output)), (partial, output))
    else:
        schema = embedding_schema(dim, dtype, string_ids)
        tmp = output.with_name(f".{output.name}.tmp")

        def tables() -> Iterator[pa.Table]:
            for s in shards:
                for emb, meta in s.chunks():
                    yield pa.table({"id": meta.column("id"),
                                    "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), dim),
                                    "status": meta.column("status")}, schema=schema)

        expect_rows(output, write_parquet(tmp, schema, tables()), total)
        install((tmp, output))
    return finals


def _merge_index(shards: list[Shard], index: Path, output: Path | None, on_disk: bool | None) -> dict[str, Any]:
    from ignite.index.distributed import merge_shard_indexes

    folders = [(index / s.name, s.offset) for s in shards if s.record["rows"]]  # an empty shard has no index

    def vectors() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for s in shards:
            for emb, meta in s.chunks():
                ok = pc.equal(meta.column("status"), "ok").to_numpy(zero_copy_only=False)
                yield meta.column("row").to_numpy()[ok], emb[ok]

    # Search reads texts back through the `row` column: only the merged ids file numbers rows globally.
    rows_from = [str(ids_path(output).resolve())] if output is not None and output_kind(output) == "npy" else []
    return merge_shard_indexes(index, folders, vectors(), {"row_metadata": rows_from}, on_disk)
