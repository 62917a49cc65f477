"""The index folder: shards `shard-00000.faiss`, one `index.json` describing them (type, count,
fingerprint, nprobe, recall), and optionally `merged.faiss`. Every file is written to a
temporary name, fsynced and renamed."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ignite.errors import UsageError
from ignite.io.manifest import atomic_write

INFO = "index.json"


def fingerprint(index: Any) -> str:
    """Hash of the trained, empty index: equal for every shard cloned from one training."""
    import faiss

    empty = faiss.clone_index(index)
    empty.reset()
    return hashlib.sha256(faiss.serialize_index(empty).tobytes()).hexdigest()[:32]


def write_index(index: Any, path: Path) -> None:
    import faiss

    atomic_write(path, faiss.serialize_index(index).tobytes())


def read_info(folder: Path) -> dict[str, Any]:
    path = folder / INFO
    if not path.is_file():
        raise UsageError(f"{folder} is not an Ignite index folder (no {INFO}); build one with `ignite embed ... --index {folder}`")
    return json.loads(path.read_text())


def write_info(folder: Path, info: dict[str, Any]) -> None:
    atomic_write(folder / INFO, json.dumps(info, indent=2).encode())


def load_shard(folder: Path, entry: dict[str, Any], expect: str) -> Any:
    import faiss

    path = folder / entry["file"]
    if not path.is_file():
        raise UsageError(f"index shard {path} is missing; rebuild the index or restore the file")
    index = faiss.read_index(str(path))
    got = fingerprint(index)
    if got != expect or entry.get("fingerprint") != expect:
        raise UsageError(f"index shard {path} has fingerprint {got}, not the index's {expect}: it comes from "
                         f"another training and cannot be merged or searched with the others")
    if index.ntotal != entry["count"]:
        raise UsageError(f"index shard {path} holds {index.ntotal} vectors, its entry says {entry['count']}")
    return _shifted(index, entry.get("row_offset", 0))


def _shifted(index: Any, offset: int) -> Any:
    """`index` with `offset` added to every id: a shard of `ignite merge` numbers its rows from 0."""
    import faiss

    if not offset:
        return index
    out = faiss.clone_index(index)
    out.reset()
    out.merge_from(index, offset)
    return out


def set_nprobe(index: Any, nprobe: int) -> None:
    import faiss

    if nprobe:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = nprobe


def merge(folder: Path, on_disk: bool | None = None) -> Path:
    """Merge every shard into `merged.faiss` after checking fingerprints and counts. In RAM, or
    for an IVF index on disk (`merged.ivfdata` beside it, memory-mapped when searched): only the
    inverted lists' directory is held in RAM, so the merged index may exceed memory. `on_disk`
    None: on disk when the shards together take more than half the memory available now."""
    info = read_info(folder)
    if not info["shards"]:
        raise UsageError(f"{folder} has no shards to merge")
    entries = info["shards"]
    ivf = info["factory"] != "Flat" and "IVF" in info["factory"]
    if on_disk is None:
        on_disk = ivf and sum((folder / e["file"]).stat().st_size for e in entries if (folder / e["file"]).is_file()) \
            > _available_memory() // 2
    if on_disk and not ivf:
        raise UsageError(f"{folder} holds a {info['factory']} index: only IVF indexes can be merged on disk; "
                         f"merge it in RAM (drop --on-disk)")
    merged = _merge_on_disk(folder, info) if on_disk else _merge_in_ram(folder, info)
    if merged.ntotal != info["count"]:
        raise UsageError(f"merged index holds {merged.ntotal} vectors, {INFO} says {info['count']}")
    write_index(merged, folder / MERGED)
    info["merged"] = {"file": MERGED, "count": int(merged.ntotal), "on_disk": bool(on_disk)}
    write_info(folder, info)
    return folder / MERGED


MERGED, IVFDATA = "merged.faiss", "merged.ivfdata"


def _merge_in_ram(folder: Path, info: dict[str, Any]) -> Any:
    shards = [load_shard(folder, e, info["fingerprint"]) for e in info["shards"]]
    merged = shards[0]
    for other in shards[1:]:
        merged.merge_from(other, 0)
    return merged


def _merge_on_disk(folder: Path, info: dict[str, Any]) -> Any:
    import faiss
    from faiss.contrib.ondisk import merge_ondisk

    files, shifted = [], []
    for n, entry in enumerate(info["shards"]):  # fingerprints and counts, one shard in RAM at a time
        index = load_shard(folder, entry, info["fingerprint"])
        if entry.get("row_offset"):  # its ids renumbered, into a temporary file the merge reads
            shifted.append(folder / f".shifted-{n:05d}.faiss")
            write_index(index, shifted[-1])
        files.append(shifted[-1] if entry.get("row_offset") else folder / entry["file"])
    template = faiss.read_index(str(folder / info["shards"][0]["file"]))
    template.reset()
    data, partial = folder / IVFDATA, folder / (IVFDATA + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with _c_stdout_to_stderr():
            merge_ondisk(template, [str(f) for f in files], str(partial))
    finally:
        for path in shifted:
            path.unlink(missing_ok=True)
    invlists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(template).invlists)
    # Searches open the lists through the index file's folder (IO_FLAG_ONDISK_SAME_DIR), so
    # the folder can be moved; the name recorded is the final one.
    invlists.filename = str(data)
    with open(partial, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(partial, data)
    return template


@contextlib.contextmanager
def _c_stdout_to_stderr() -> Iterator[None]:
    """FAISS's on-disk lists printf progress notes; stdout carries `ignite search` results, so
    those notes go to stderr."""
    import ctypes

    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62  # unknown: never choose the disk on memory grounds


def read_merged(folder: Path, info: dict[str, Any]) -> Any:
    import faiss

    if not info["merged"].get("on_disk"):
        return faiss.read_index(str(folder / info["merged"]["file"]))
    with _c_stdout_to_stderr():
        return faiss.read_index(str(folder / info["merged"]["file"]), faiss.IO_FLAG_ONDISK_SAME_DIR)


def search(folder: Path, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, row ids) over the merged index if present, else over every shard."""
    import faiss

    info = read_info(folder)
    nprobe = info.get("nprobe", 0) if nprobe is None else nprobe
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if info.get("merged"):
        index = read_merged(folder, info)
        set_nprobe(index, nprobe)
        return index.search(queries, k)
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for entry in info["shards"]:
        index = load_shard(folder, entry, info["fingerprint"])
        set_nprobe(index, nprobe)
        scores, ids = index.search(queries, k)
        heap.add_result(scores, ids)
    heap.finalize()
    return heap.D, heap.I
