"""Builds the index while the corpus is embedded. The writer hands it each committed window's
vectors; it adds them in large batches with ids = output rows, seals a shard every
`shard_size` vectors, and keeps the exact top-k of a held-out query sample up to date so the
recall of the finished index can be measured without a second pass."""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ignite.errors import UsageError
from ignite.index.plan import IndexPlan
from ignite.index.store import fingerprint, write_index, write_info
from ignite.io.manifest import atomic_write

log = logging.getLogger(__name__)

ADD_BATCH = 65536
RECALL_K = 10
RECALL_TARGET = 0.95
TRAINED, QUERIES = "trained.faiss", "queries.npz"  # written by `ignite index train`


class IndexBuilder:
    def __init__(self, folder: Path, plan: IndexPlan, dim: int, shard_size: int, metadata: dict[str, Any]) -> None:
        import faiss

        self.folder, self.plan, self.dim, self.shard_size = folder, plan, dim, shard_size
        self.metadata = metadata
        folder.mkdir(parents=True, exist_ok=True)
        self._template = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
        if faiss.try_extract_index_ivf(self._template) is None:
            # Exact and other non-IVF indexes number vectors 0..n-1: map them to output rows.
            self._template = faiss.IndexIDMap2(self._template)
        self._fingerprint: str | None = None
        self._shard: Any = None
        self._shards: list[dict[str, Any]] = []
        self._pending_rows: list[np.ndarray] = []
        self._pending_vecs: list[np.ndarray] = []
        self._pending = 0
        self.count = 0
        self.seconds = 0.0
        self._queries: np.ndarray | None = None
        self._query_rows: np.ndarray | None = None
        self._truth: Any = None

    # -- set-up ---------------------------------------------------------------------------
    def train(self, sample: np.ndarray) -> None:
        start = time.perf_counter()
        if self.plan.needs_training:
            log.info("training %s on %d sampled vectors", self.plan.factory, len(sample))
            self._template.train(np.ascontiguousarray(sample, dtype=np.float32))
        self._fingerprint = fingerprint(self._template)
        self.seconds += time.perf_counter() - start

    def hold_out(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Queries for the recall report: their exact neighbours are tracked as vectors arrive."""
        self._query_rows = np.asarray(rows, dtype=np.int64)
        self._queries = np.ascontiguousarray(vectors, dtype=np.float32)
        self._truth = exact_heap(len(rows))

    # -- streaming --------------------------------------------------------------------------
    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        if len(rows) == 0:
            return
        self._pending_rows.append(np.asarray(rows, dtype=np.int64))
        self._pending_vecs.append(np.ascontiguousarray(vectors, dtype=np.float32))
        self._pending += len(rows)
        if self._pending >= ADD_BATCH:
            self._flush()

    def _flush(self) -> None:
        import faiss

        if not self._pending:
            return
        start = time.perf_counter()
        rows = np.concatenate(self._pending_rows)
        vecs = np.concatenate(self._pending_vecs)
        self._pending_rows, self._pending_vecs, self._pending = [], [], 0
        if self._queries is not None:
            add_exact(self._truth, self._queries, rows, vecs)
        lo = 0
        while lo < len(rows):
            if self._shard is None:
                self._shard = faiss.clone_index(self._template)
            take = min(len(rows) - lo, self.shard_size - self._shard.ntotal)
            self._shard.add_with_ids(vecs[lo: lo + take], rows[lo: lo + take])
            lo += take
            self.count += take
            if self._shard.ntotal >= self.shard_size:
                self._seal()
        self.seconds += time.perf_counter() - start

    def _seal(self) -> None:
        name = f"shard-{len(self._shards):05d}.faiss"
        write_index(self._shard, self.folder / name)
        self._shards.append({"file": name, "count": int(self._shard.ntotal), "fingerprint": self._fingerprint})
        self._shard = None
        self._write_info(final=False)

    # -- finish -----------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        self._flush()
        start = time.perf_counter()
        if self._shard is not None and self._shard.ntotal:
            self._seal()
        report = self._recall()
        self.seconds += time.perf_counter() - start
        return self._write_info(final=True, report=report)

    def _recall(self) -> dict[str, Any]:
        if self._queries is None or self.count == 0:
            return {"queries": 0}
        self._write_info(final=False)
        return tune_nprobe(self.folder, self._queries, self._query_rows, self._truth, self.plan.nlist)

    # -- trained once, filled by many (ignite index train; ignite embed --shard --index) -------
    def save_trained(self) -> None:
        """Write the trained, empty index and its recall queries, for shards to clone."""
        import io

        write_index(self._template, self.folder / TRAINED)
        buf = io.BytesIO()
        np.savez(buf, rows=self._query_rows, vectors=self._queries)
        atomic_write(self.folder / QUERIES, buf.getvalue())
        self.metadata["trained"] = {"file": TRAINED, "queries": QUERIES, "plan": dataclasses.asdict(self.plan)}
        self._write_info(final=False)

    def adopt(self, trained: Any, expect: str) -> None:
        """Fill a clone of an index trained elsewhere instead of training one."""
        got = fingerprint(trained)
        if got != expect:
            raise UsageError(f"the trained index has fingerprint {got}, its index.json says {expect}; "
                             f"train it again (ignite index train)")
        self._template, self._fingerprint = trained, got

    def _write_info(self, final: bool, report: dict[str, Any] | None = None) -> dict[str, Any]:
        info = {
            "format": 1, "factory": self.plan.factory, "metric": "inner_product", "dim": self.dim,
            "count": int(sum(s["count"] for s in self._shards)), "fingerprint": self._fingerprint,
            "shards": self._shards, "complete": final, "nprobe": (report or {}).get("nprobe", 0),
            "recall": report or {}, "build_seconds": round(self.seconds, 3), **self.metadata,
        }
        write_info(self.folder, info)
        return info


def add_exact(truth: Any, queries: np.ndarray, rows: np.ndarray, vecs: np.ndarray) -> None:
    """Fold the exact top-(k+1) of `queries` among `vecs` (ids `rows`) into the heap `truth`."""
    import faiss

    scores, idx = faiss.knn(queries, vecs, min(RECALL_K + 1, len(vecs)), metric=faiss.METRIC_INNER_PRODUCT)
    pad = RECALL_K + 1 - scores.shape[1]
    if pad:
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
    truth.add_result(scores, np.where(idx >= 0, rows[np.maximum(idx, 0)], -1))


def exact_heap(queries: int) -> Any:
    """A heap for the exact neighbours of `queries` queries (k+1: a query's own row is left out)."""
    import faiss

    return faiss.ResultHeap(queries, RECALL_K + 1, keep_max=True)


def tune_nprobe(folder: Path, queries: np.ndarray, query_rows: np.ndarray, truth: Any, nlist: int) -> dict[str, Any]:
    """Search the index in `folder` with nprobe 1, 2, 4, ... until recall@10 against the exact
    neighbours in the (unfinalized) heap `truth` reaches the target; the report for index.json."""
    from ignite.index.store import search

    truth.finalize()
    want = _drop_self(truth.I, query_rows, RECALL_K)
    candidates = [0] if not nlist else _nprobe_ladder(nlist)
    report: dict[str, Any] = {"queries": int(len(queries)), "k": RECALL_K, "target": RECALL_TARGET}
    tried = []
    for nprobe in candidates:
        _, ids = search(folder, queries, RECALL_K + 1, nprobe=nprobe)
        got = _drop_self(ids, query_rows, RECALL_K)
        recall = float(np.mean([len(set(g) & set(t)) / max(len(t), 1) for g, t in zip(got, want)]))
        tried.append({"nprobe": nprobe, "recall_at_10": round(recall, 4)})
        if recall >= RECALL_TARGET:
            break
    report["tried"] = tried
    report["nprobe"] = tried[-1]["nprobe"]
    report["recall_at_10"] = tried[-1]["recall_at_10"]
    return report


def _nprobe_ladder(nlist: int) -> list[int]:
    ladder, p = [], 1
    while p < nlist:
        ladder.append(p)
        p *= 2
    return ladder + [nlist]


def _drop_self(ids: np.ndarray, rows: np.ndarray, k: int) -> list[list[int]]:
    return [[int(i) for i in line if i != row and i >= 0][:k] for line, row in zip(ids, rows)]

