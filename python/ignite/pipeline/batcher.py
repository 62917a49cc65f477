"""Pack a tokenized window into batches: sort by length, cut batches whose padded size
(rows x padded length) stays under a token budget, fill int32 ids and mask. Vectorised over
records; the Python loop runs once per batch, never per record."""
from __future__ import annotations

from typing import Iterator

import numpy as np

MAX_ROWS = 1024


def round_up(length: np.ndarray | int, multiple: int) -> np.ndarray | int:
    return -(-length // multiple) * multiple


def plan_batches(lengths: np.ndarray, budget: int, pad_multiple: int = 1,
                 max_rows: int = MAX_ROWS) -> Iterator[np.ndarray]:
    """Yield arrays of record indices (into `lengths`), each batch under `budget` padded tokens.
    A record longer than the budget still gets a batch of its own."""
    order = np.argsort(lengths, kind="stable")
    padded = round_up(lengths[order], pad_multiple)
    i, n = 0, len(order)
    while i < n:
        # Sorted ascending, so a batch's padded length is that of its last row: the sizes
        # k * padded[i + k - 1] grow with k and the largest k under the budget is a search.
        span = min(n - i, max_rows, max(1, budget // max(int(padded[i]), 1)))
        sizes = np.arange(1, span + 1) * padded[i: i + span]
        k = max(1, int(np.searchsorted(sizes, budget, side="right")))
        yield order[i: i + k]
        i += k


def fill_batch(token_ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray,
               pad_multiple: int = 1, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Padded [len(rows), L] int32 ids and mask for the given records of a flat token array."""
    starts = offsets[rows]
    lens = offsets[rows + 1] - starts
    width = int(round_up(int(lens.max()), pad_multiple)) if len(rows) else 0
    cols = np.arange(width, dtype=np.int64)
    mask = cols[None, :] < lens[:, None]
    index = np.where(mask, starts[:, None] + cols[None, :], 0)
    ids = np.where(mask, token_ids[index], pad_id).astype(np.int32, copy=False)
    return ids, mask.astype(np.int32)
