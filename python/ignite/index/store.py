"""The index folder: shards `shard-00000.faiss`, one `index.json` describing them (type, count,
fingerprint, nprobe, recall), and optionally `merged.faiss`. Every file is written to a
temporary name, fsynced and renamed."""
from __future__ import annotations

import hashlib
import json
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
    return index


def set_nprobe(index: Any, nprobe: int) -> None:
    import faiss

    if nprobe:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = nprobe


def merge(folder: Path) -> Path:
    """Merge every shard into `merged.faiss` (in RAM) after checking fingerprints and counts."""
    info = read_info(folder)
    shards = [load_shard(folder, e, info["fingerprint"]) for e in info["shards"]]
    if not shards:
        raise UsageError(f"{folder} has no shards to merge")
    merged = shards[0]
    for other in shards[1:]:
        merged.merge_from(other, 0)
    if merged.ntotal != info["count"]:
        raise UsageError(f"merged index holds {merged.ntotal} vectors, {INFO} says {info['count']}")
    write_index(merged, folder / "merged.faiss")
    info["merged"] = {"file": "merged.faiss", "count": int(merged.ntotal)}
    write_info(folder, info)
    return folder / "merged.faiss"


def search(folder: Path, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, row ids) over the merged index if present, else over every shard."""
    import faiss

    info = read_info(folder)
    nprobe = info.get("nprobe", 0) if nprobe is None else nprobe
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if info.get("merged"):
        index = faiss.read_index(str(folder / info["merged"]["file"]))
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
