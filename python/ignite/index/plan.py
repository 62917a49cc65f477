"""Choose a FAISS index from the expected vector count and a memory budget, following the FAISS
guidelines: exact search while it is cheap, then IVF with a coarse quantizer of ~4*sqrt(N)
lists, compressing the vectors (SQ8, then PQ) only when they would not fit the budget."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ignite.errors import UsageError

FLAT_BELOW = 200_000
SHORTHANDS = ("auto", "flat", "ivf", "ivfsq", "ivfpq")


@dataclass(frozen=True)
class IndexPlan:
    factory: str  # a faiss index_factory string
    nlist: int  # 0 for flat
    train_size: int  # vectors needed to train (0 for flat)

    @property
    def needs_training(self) -> bool:
        return self.train_size > 0


TRAIN_SHARE = 0.05  # the training sample is embedded once more: keep it a small share of the corpus


def _nlist(n: int) -> int:
    # 4*sqrt(N) rounded to a power of two (FAISS's guideline), at least 16 lists, and no more
    # than lets 39 training points per list stay within TRAIN_SHARE of the corpus.
    target = max(16, 4 * math.sqrt(max(n, 1)))
    nlist = 2 ** round(math.log2(target))
    while nlist > 16 and nlist * 39 > n * TRAIN_SHARE:
        nlist //= 2
    return nlist


def _pq_m(dim: int, bytes_per_vector: int) -> int:
    """Largest sub-quantizer count <= bytes_per_vector that divides dim."""
    for m in range(min(bytes_per_vector, dim), 0, -1):
        if dim % m == 0:
            return m
    return 1


def _train_size(nlist: int, n: int, pq: bool) -> int:
    # FAISS wants >= 39 points per list (and per PQ centroid); more costs embedding time.
    return int(min(max(n, 1), max(39 * nlist, 39 * 256 if pq else 0)))


def plan_index(kind: str, expected: int, dim: int, memory_bytes: int) -> IndexPlan:
    kind = kind.strip()
    lower = kind.lower()
    n = max(expected, 1)
    if lower == "auto":
        if n < FLAT_BELOW:
            lower = "flat"
        elif n * dim * 4 * 1.1 <= memory_bytes:
            lower = "ivf"
        elif n * dim * 1.1 <= memory_bytes:
            lower = "ivfsq"
        else:
            lower = "ivfpq"
    if lower == "flat":
        return IndexPlan("Flat", 0, 0)
    if lower in ("ivf", "ivfsq", "ivfpq"):
        nlist = _nlist(n)
        if lower == "ivf":
            return IndexPlan(f"IVF{nlist},Flat", nlist, _train_size(nlist, n, False))
        if lower == "ivfsq":
            return IndexPlan(f"IVF{nlist},SQ8", nlist, _train_size(nlist, n, False))
        per_vector = max(8, int(memory_bytes / n / 1.1))
        m = _pq_m(dim, min(per_vector, 64))
        return IndexPlan(f"IVF{nlist},PQ{m}", nlist, _train_size(nlist, n, True))
    return _plan_factory(kind, n, dim)


def _plan_factory(factory: str, n: int, dim: int) -> IndexPlan:
    """A user's own index_factory string, passed through to FAISS."""
    import faiss

    try:
        probe = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except Exception as exc:  # FAISS raises RuntimeError with its own message
        raise UsageError(f"--index-type {factory!r} is not a FAISS index_factory string FAISS accepts "
                         f"({str(exc).splitlines()[-1] if str(exc) else exc}); or use one of {', '.join(SHORTHANDS)}") from None
    match = re.search(r"IVF(\d+)", factory)
    nlist = int(match.group(1)) if match else 0
    trained = probe.is_trained
    return IndexPlan(factory, nlist, 0 if trained else _train_size(max(nlist, 1), n, "PQ" in factory))
