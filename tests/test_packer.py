"""The native packer (ignite._engine.plan_batches/fill_batch) against the numpy reference in
ignite.backends.packing: the same batches (rows, order, widths) and the same ids and mask; the
BufferPool's reuse; and a pipeline run whose batch buffers all come back to the pool."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from ignite.backends import packing
from ignite.backends.packing import BufferPool, fill_batch, plan_batches

pytestmark = pytest.mark.skipif(not packing.NATIVE, reason="ignite._engine was built without the packer")


def _same_plan(lengths: np.ndarray, budget: int, multiple: int, max_rows: int, max_width: int = 0) -> None:
    native = plan_batches(lengths, budget, multiple, max_rows, max_width, native=True)
    ref = plan_batches(lengths, budget, multiple, max_rows, max_width, native=False)
    where = f"n={len(lengths)} budget={budget} multiple={multiple} max_rows={max_rows} max_width={max_width}"
    assert native.order.dtype == native.bounds.dtype == native.widths.dtype == np.int64
    assert np.array_equal(native.order, ref.order), where
    assert np.array_equal(native.bounds, ref.bounds), where
    assert np.array_equal(native.widths, ref.widths), where


@pytest.mark.parametrize("seed", range(6))
def test_plan_matches_numpy_on_random_lengths(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(150):
        n = int(rng.choice([0, 1, 2, 3, 17, 100, 1000, 5000]))
        high = int(rng.choice([1, 4, 40, 300, 600, 3000]))  # 1 and 4: nearly all ties
        lengths = rng.integers(0, high, n)
        budget = int(rng.choice([-3, 0, 1, 7, 64, 512, 1000, 8192, 16384, 65536, 10**7]))
        _same_plan(lengths, budget, int(rng.choice([1, 2, 8, 16, 64])), int(rng.choice([1, 3, 64, 1024])))


def test_plan_edge_cases() -> None:
    _same_plan(np.zeros(0, np.int64), 100, 8, 1024)  # empty
    _same_plan(np.zeros(50, np.int64), 100, 8, 1024)  # all empty records: width 0
    _same_plan(np.full(3000, 7), 100, 8, 1024)  # all tied
    _same_plan(np.array([5000, 10, 9000, 10, 1, 20000]), 4096, 16, 1024)  # longer than the budget: alone
    _same_plan(np.arange(2000)[::-1].copy(), 16384, 8, 1024)  # descending
    _same_plan(np.full(5000, 1), 10**6, 1, 1024)  # the row cap cuts
    # A range far wider than the records sorts by comparison; ties still keep input order.
    _same_plan(np.array([10**9, 3, 10**9, 3, 10**8, 0, 10**9]), 10**9, 1, 1024)
    _same_plan(np.random.default_rng(1).integers(0, 10**9, 3000), 2 * 10**9, 64, 7)


def test_plan_is_stable_and_within_budget() -> None:
    lengths = np.random.default_rng(2).integers(1, 200, 4000)
    plan = plan_batches(lengths, 4096, 8, native=True)
    assert np.array_equal(plan.order, np.argsort(lengths, kind="stable"))
    batches = list(plan)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for rows, width in zip(batches, plan.widths):
        assert width == -(-lengths[rows].max() // 8) * 8 and len(rows) * width <= 4096


@pytest.mark.parametrize("native", [True, False])
def test_widths_never_pass_max_width(native: bool) -> None:
    """A record of --max-length 100 tokens is not padded to 104 with pad multiple 8: a GPU engine's
    longest profile is 100 and would refuse the batch."""
    lengths = np.array([100, 97, 50, 100, 3, 96])
    plan = plan_batches(lengths, 4096, 8, max_width=100, native=native)
    assert plan.widths.max() == 100
    for rows, width in zip(plan, plan.widths):
        assert lengths[rows].max() <= width <= 100
    # Rounding still applies below the cap, and a (never tokenized) longer record keeps its length.
    assert plan_batches(np.array([3]), 4096, 8, max_width=100, native=native).widths.tolist() == [8]
    assert plan_batches(np.array([130]), 4096, 8, max_width=100, native=native).widths.tolist() == [130]


def test_plan_with_max_width_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    for max_width in (1, 100, 127, 512):
        _same_plan(np.minimum(rng.integers(0, 600, 3000), max_width), 16384, 8, 1024, max_width)
        _same_plan(rng.integers(0, 600, 300), 4096, 64, 64, max_width)  # some longer than the cap


def test_plan_refuses_bad_arguments() -> None:
    from ignite._engine import InvalidArgument

    with pytest.raises(InvalidArgument, match="negative"):
        plan_batches(np.array([3, -1]), 100, native=True)
    with pytest.raises(ValueError, match="pad_multiple"):
        plan_batches(np.array([3]), 100, 0, native=True)
    with pytest.raises(ValueError, match="max_rows"):
        plan_batches(np.array([3]), 100, 1, 0, native=True)
    for native in (True, False):
        with pytest.raises(ValueError, match="max_width"):
            plan_batches(np.array([3]), 100, 1, 8, -1, native=native)


def _tokens(rng: np.random.Generator, n: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = rng.integers(0, high, n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return rng.integers(0, 30522, int(offsets[-1])).astype(np.int32), offsets


@pytest.mark.parametrize("seed", range(4))
def test_fill_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    pool = BufferPool(8192)
    for _ in range(40):
        flat, offsets = _tokens(rng, int(rng.integers(1, 600)), int(rng.choice([1, 20, 300])))
        multiple, pad_id = int(rng.choice([1, 8, 64])), int(rng.choice([0, 1, 103]))
        plan = plan_batches(np.diff(offsets), int(rng.choice([256, 8192])), multiple, native=True)
        for rows, width in zip(plan, plan.widths.tolist()):
            ref_ids, ref_mask = fill_batch(flat, offsets, rows, multiple, pad_id, native=False)
            assert ref_ids.shape[1] == width
            out = pool.acquire(len(rows) * width)
            out.ids.fill(-7)  # stale values from an earlier batch must not show through
            out.mask.fill(-7)
            ids, mask = fill_batch(flat, offsets, rows, multiple, pad_id, width=width, out=out, native=True)
            assert ids.dtype == mask.dtype == np.int32 and ids.flags.c_contiguous
            assert ids.size == 0 or (np.shares_memory(ids, out.ids) and np.shares_memory(mask, out.mask))
            assert np.array_equal(ids, ref_ids) and np.array_equal(mask, ref_mask)
            fresh_ids, fresh_mask = fill_batch(flat, offsets, rows, multiple, pad_id, native=True)
            assert np.array_equal(fresh_ids, ref_ids) and np.array_equal(fresh_mask, ref_mask)
            out.release()
    # Shuffled rows (any order, not only the plan's) and a width wider than needed.
    flat, offsets = _tokens(rng, 50, 30)
    rows = rng.permutation(50)
    ref_ids, ref_mask = fill_batch(flat, offsets, rows, 1, 5, width=40, native=False)
    ids, mask = fill_batch(flat, offsets, rows, 1, 5, width=40, native=True)
    assert np.array_equal(ids, ref_ids) and np.array_equal(mask, ref_mask)


def test_fill_refuses_what_it_cannot_write() -> None:
    from ignite._engine import InvalidArgument
    from ignite._engine import fill_batch as native_fill

    flat, offsets = np.arange(10, dtype=np.int32), np.array([0, 4, 10], np.int64)
    rows = np.array([0, 1], np.int64)
    ids, mask = np.zeros((2, 6), np.int32), np.zeros((2, 6), np.int32)
    assert native_fill(flat, offsets, rows, 6, 0, ids, mask) == 10
    with pytest.raises(InvalidArgument, match="more than the width"):
        native_fill(flat, offsets, rows, 5, 0, ids, mask)
    with pytest.raises(InvalidArgument, match="outside the 2 records"):
        native_fill(flat, offsets, np.array([2], np.int64), 6, 0, ids, mask)
    with pytest.raises(InvalidArgument, match="outside the 10 tokens"):
        native_fill(flat, np.array([0, 4, 11], np.int64), rows, 6, 0, ids, mask)
    with pytest.raises(InvalidArgument, match="need room for 14"):
        native_fill(flat, offsets, rows, 7, 0, ids, mask)
    with pytest.raises(TypeError):  # written in place, so never converted to a copy
        native_fill(flat, offsets, rows, 6, 0, ids.astype(np.int64), mask)
    with pytest.raises(TypeError):
        native_fill(flat, offsets, rows, 3, 0, ids[:, ::2], mask)
    ids.setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        native_fill(flat, offsets, rows, 6, 0, ids, mask)


def test_buffer_pool_reuses_and_keys_by_capacity() -> None:
    pool = BufferPool(1000)
    a = pool.acquire(10)
    assert a.capacity == 1000 and pool.allocated == 1
    b = pool.acquire(1000)
    assert b is not a and pool.allocated == 2
    a.release()
    assert pool.acquire(999) is a and pool.allocated == 2  # reused, not allocated
    big = pool.acquire(1500)  # a lone record over the budget: the next power of two
    assert big.capacity == 2048
    big.release()
    assert pool.acquire(2000) is big
    assert pool.acquire(1001).capacity == 1024 and pool.allocated == 4
    with pytest.raises(ValueError, match="does not fit"):
        a.views(11, 100)
    a.release()
    with pytest.raises(RuntimeError, match="released twice"):
        a.release()


def test_buffer_pool_steady_state_allocates_nothing() -> None:
    """Windows after windows with a bounded number of batches in flight: the pool stops growing
    after the first window, across threads (acquired by one, released by another)."""
    import queue

    pool, rng = BufferPool(4096), np.random.default_rng(5)
    in_flight: queue.Queue = queue.Queue(maxsize=6)

    def writer() -> None:
        while (item := in_flight.get()) is not None:
            item.release()

    thread = threading.Thread(target=writer)
    thread.start()
    after_first = None
    for window in range(30):
        flat, offsets = _tokens(rng, 500, 120)
        plan = plan_batches(np.diff(offsets), 4096, 8)
        for rows, width in zip(plan, plan.widths.tolist()):
            out = pool.acquire(len(rows) * width)
            fill_batch(flat, offsets, rows, 8, 0, width=width, out=out)
            in_flight.put(out)
        if window == 0:
            after_first = pool.allocated
    in_flight.put(None)
    thread.join()
    assert after_first is not None and pool.allocated <= after_first + 8  # at most the queue's depth more
    assert pool.idle == pool.allocated  # every buffer came back


class _CheckingRunner:
    """A fake backend returning a deterministic vector of each row's tokens (its length, its id
    sum mod 1009, 1); `broken` fails every call (a dead device)."""

    name, device, dtype, dim = "checking", "cpu", "fp32", 3

    def __init__(self, broken: bool = False) -> None:
        self.broken, self.calls = broken, 0
        self._lock = threading.Lock()

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
        if self.broken:
            raise RuntimeError("device lost")
        lengths = attention_mask.sum(axis=1)
        sums = (input_ids.astype(np.int64) * attention_mask).sum(axis=1)
        return np.stack([lengths, sums % 1009, np.ones_like(lengths)], axis=1).astype(np.float32)


def _pipeline(tmp_path: Path, tokenizer_json: Path, texts: list[str], runners: list,
              monkeypatch) -> tuple:  # type: ignore[no-untyped-def]
    from ignite.config import EmbedConfig, ModelOptions
    from ignite.io.inputs import expand_inputs
    from ignite.io.manifest import WorkDir
    from ignite.pipeline import stages
    from ignite.pipeline.run import run_pipeline
    from ignite.pipeline.tokenize import WindowTokenizer

    pools: list[BufferPool] = []

    class RecordedPool(BufferPool):
        def __init__(self, base: int) -> None:
            super().__init__(base)
            pools.append(self)

    monkeypatch.setattr(stages, "BufferPool", RecordedPool)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    out = tmp_path / "emb.npy"
    options = ModelOptions(pooling="mean", normalize=False, max_length=64, prefix="", dim=None)
    cfg = EmbedConfig(inputs=(src,), output=out, output_kind="npy", field="text", id_field=None, model_name="t",
                      model_path=tokenizer_json.parent, model=options, backend="checking", dtype="fp32",
                      output_dtype="float32", batch_tokens=256, window_records=50, shard_rows=1000,
                      cache_dir=tmp_path, threads=1, quiet=True, overwrite=False, errors_path=None, max_errors=None)
    work = WorkDir(out)
    start = work.create({"format": 1, "inputs": [], "options": {}})
    tokenizer = WindowTokenizer(tokenizer_json, 64)
    stats = run_pipeline(cfg, expand_inputs([str(src)]), runners, tokenizer, work, start, pad_multiple=8)
    return stats, np.load(out), pools[0], tokenizer


@pytest.mark.parametrize(("devices", "packer"), [("one", "native"), ("one broken of two", "native"),
                                                 ("one", "numpy fallback"), ("one", "ingest"),
                                                 ("one broken of two", "ingest")])
def test_pipeline_returns_every_buffer(tmp_path: Path, model_dir: Path, devices: str, packer: str,
                                       monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Through run_pipeline: each row's vector is that of its own tokens (so no buffer was reused
    while a batch was still in use, even when a dead device hands its batches over), and on the
    Python stages every buffer is back in the pool at the end, the pool far smaller than the batch
    count. "ingest": the native ingest pipeline, whose pool is native (tests/engine/test_ingest)."""
    monkeypatch.setenv("IGNITE_PIPELINE", "native" if packer == "ingest" else "python")
    if packer == "numpy fallback":
        monkeypatch.setattr(packing, "NATIVE", False)
    native_fills = []
    fill = packing._native_fill
    monkeypatch.setattr(packing, "_native_fill", lambda *args: native_fills.append(fill(*args)))
    rng = np.random.default_rng(9)
    words = "river stone bread tide prime violin glacier compiler cloud ember frost harbor".split()
    texts = [" ".join(rng.choice(words, int(rng.integers(1, 40)))) for _ in range(700)]
    runners = [_CheckingRunner()] if devices == "one" else [_CheckingRunner(broken=True), _CheckingRunner()]
    stats, emb, pool, tokenizer = _pipeline(tmp_path, model_dir / "tokenizer.json", texts, runners, monkeypatch)
    flat, offsets = tokenizer.encode(texts)
    lengths = np.diff(offsets)
    sums = np.array([flat[offsets[i]:offsets[i + 1]].astype(np.int64).sum() for i in range(len(texts))])
    assert stats.failed == 0 and stats.batches > 30
    assert np.array_equal(emb[:, 0], lengths) and np.array_equal(emb[:, 1], sums % 1009)
    if packer != "ingest":
        assert pool.idle == pool.allocated < stats.batches
        assert len(native_fills) == (stats.batches if packer == "native" else 0)  # native by default
    if devices != "one":
        assert runners[0].calls >= 3 and runners[1].calls > 0
