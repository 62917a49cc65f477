"""The packer: every record in exactly one batch, the budget respected, ids and mask exact."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ignite.backends.packing import fill_batch, plan_batches, round_up


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=400), st.integers(16, 5000), st.sampled_from([1, 8, 16]))
def test_plan_covers_every_record_under_budget(lengths: list[int], budget: int, multiple: int) -> None:
    arr = np.asarray(lengths, dtype=np.int64)
    batches = list(plan_batches(arr, budget, multiple))
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    for rows in batches:
        padded = int(round_up(int(arr[rows].max()), multiple))
        assert len(rows) == 1 or len(rows) * padded <= budget


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(1, 30000), min_size=0, max_size=40), min_size=1, max_size=50),
       st.sampled_from([1, 8]))
def test_fill_batch_is_exact(seqs: list[list[int]], multiple: int) -> None:
    flat = np.asarray([t for s in seqs for t in s], dtype=np.int32)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seqs], out=offsets[1:])
    rows = np.asarray([i for i, s in enumerate(seqs) if s][::-1], dtype=np.int64)
    if len(rows) == 0:
        return
    ids, mask = fill_batch(flat, offsets, rows, multiple)
    assert ids.dtype == np.int32 and mask.dtype == np.int32 and ids.shape[1] % multiple == 0
    for r, i in enumerate(rows):
        n = len(seqs[i])
        assert ids[r, :n].tolist() == seqs[i] and not ids[r, n:].any()
        assert mask[r, :n].all() and not mask[r, n:].any()
