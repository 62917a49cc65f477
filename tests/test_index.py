"""The inline FAISS index: exact results for flat, recall for IVF, merge, fingerprints, search."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import run_cli, shared_file
from tiny_model import make_tiny_model

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert", model_dir)


def _topk(emb: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ emb.T), axis=1, kind="stable")[:, :k]


def test_flat_index_equals_exact_topk(tmp_path: Path, cache_dir: Path, tiny_model: Path) -> None:
    src = tmp_path / "in.txt"
    rng = np.random.default_rng(1)
    words = ["amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor", "iris", "juniper"]
    src.write_text("\n".join(" ".join(rng.choice(words, size=6)) + f" {i}" for i in range(3000)) + "\n")
    out, index = tmp_path / "e.npy", tmp_path / "idx"
    result = run_cli("embed", "--input", src, "--output", out, "--model", tiny_model, "--index", index,
                     "--index-type", "flat", "--index-shard-size", "1000", "--dtype", "fp32", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    info = json.loads((index / "index.json").read_text())
    assert info["count"] == 3000 and len(info["shards"]) == 3 and info["complete"]
    emb = np.load(out)
    q = emb[:20]
    from ignite.index import store

    scores, ids = store.search(index, q, 5)
    exact = _topk(emb, q, 5)
    np.testing.assert_allclose(scores, np.take_along_axis(q @ emb.T, exact, axis=1), rtol=1e-5, atol=1e-5)
    assert (np.sort(ids, axis=1) == np.sort(exact, axis=1)).mean() > 0.99  # ties may swap order
    assert info["recall"]["recall_at_10"] == 1.0


@pytest.fixture(scope="module")
def ivf_index(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, tiny_model: Path) -> tuple[Path, Path]:
    src = shared_file("passages.jsonl.zst")
    tmp = tmp_path_factory.mktemp("ivf")
    out, index = tmp / "e.npy", tmp / "idx"
    result = run_cli("embed", "--input", src, "--output", out, "--model", tiny_model, "--index", index,
                     "--index-type", "ivf", "--index-shard-size", "30000", "--dtype", "fp32", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    return out, index


def test_ivf_recall_and_merge(ivf_index: tuple[Path, Path]) -> None:
    out, index = ivf_index
    info = json.loads((index / "index.json").read_text())
    assert info["count"] >= 50_000 and info["factory"].startswith("IVF") and len(info["shards"]) >= 2
    assert info["recall"]["recall_at_10"] >= 0.95, info["recall"]
    emb = np.load(out)
    queries = emb[np.random.default_rng(2).choice(len(emb), 50, replace=False)]
    from ignite.index import store

    before = store.search(index, queries, 10)
    result = run_cli("index", "merge", index)
    assert result.returncode == 0, result.stderr
    after = store.search(index, queries, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], rtol=1e-6)
    info_out = run_cli("index", "info", index)
    assert info_out.returncode == 0 and "recall@10" in info_out.stdout and "IVF" in info_out.stdout


def test_foreign_shard_is_refused(ivf_index: tuple[Path, Path], tmp_path: Path) -> None:
    _, index = ivf_index
    copy = tmp_path / "idx"
    shutil.copytree(index, copy)
    info = json.loads((copy / "index.json").read_text())
    foreign = faiss.index_factory(info["dim"], info["factory"], faiss.METRIC_INNER_PRODUCT)
    foreign.train(np.random.default_rng(3).standard_normal((40 * 1024, info["dim"])).astype("float32"))
    faiss.write_index(foreign, str(copy / info["shards"][1]["file"]))
    result = run_cli("index", "merge", copy)
    assert result.returncode == 2
    assert "fingerprint" in result.stderr and info["shards"][1]["file"] in result.stderr
    assert "Traceback" not in result.stderr


def test_search_cli_prints_neighbours(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "docs.jsonl"
    docs = ["How to bake sourdough bread at home", "Tuning the Linux kernel scheduler",
            "Training a dog to sit", "Compiling C programs with gcc", "Planting tomatoes in spring"]
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    out, index = tmp_path / "e.npy", tmp_path / "idx"
    result = run_cli("embed", "--input", src, "--output", out, "--id-field", "id", "--index", index,
                     cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    hits = run_cli("search", "--index", index, "gcc compiler flags", "-k", "2", cache_dir=cache_dir)
    assert hits.returncode == 0, hits.stderr
    first = hits.stdout.splitlines()[1]
    assert "d3" in first and "Compiling C programs" in first
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q1", "text": "bread recipe"}\n{"id": "q2", "text": "garden vegetables"}\n')
    res = tmp_path / "res.parquet"
    batch = run_cli("search", "--index", index, "--queries", queries, "-k", "3", "--output", res, cache_dir=cache_dir)
    assert batch.returncode == 0, batch.stderr
    table = pq.read_table(res).to_pylist()
    assert [(r["query_id"], r["rank"]) for r in table] == [("q1", 1), ("q1", 2), ("q1", 3), ("q2", 1), ("q2", 2),
                                                           ("q2", 3)]
    assert table[0]["id"] == "d0" and table[3]["id"] == "d4"


def test_index_survives_kill_and_resume(tmp_path: Path, cache_dir: Path) -> None:
    """SIGKILL mid-run, then --resume --index: the index is rebuilt from the committed rows plus
    the rest and answers exactly like an index from an uninterrupted run."""
    import signal
    import time

    from ignite.index import store
    from resumekit import (
        build_tiny_model,
        embed_args,
        make_corpus,
        manifest,
        start_cli,
        wait_for_pipeline,
    )

    model = build_tiny_model(tmp_path / "tiny")
    corpus = make_corpus(tmp_path / "corpus", n=12_000)
    ref_out, ref_idx = tmp_path / "ref" / "e.npy", tmp_path / "ref" / "idx"
    ref_out.parent.mkdir()
    index_args = ("--index-type", "flat", "--index-shard-size", "5000")
    done = run_cli(*embed_args(corpus, ref_out, model, "--index", ref_idx, *index_args), cache_dir=cache_dir)
    assert done.returncode == 0, done.stderr
    out, idx, log = tmp_path / "e.npy", tmp_path / "idx", tmp_path / "stderr.txt"
    proc = start_cli(embed_args(corpus, out, model, "--index", idx, *index_args), cache_dir, log)
    assert wait_for_pipeline(proc, log)
    deadline = time.monotonic() + 60
    while (state := manifest(out)) is None or state["rows"] < 3000:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run_cli(*embed_args(corpus, out, model, "--index", idx, *index_args, "--resume"), cache_dir=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert "indexing the" in resumed.stderr
    a, b = json.loads((idx / "index.json").read_text()), json.loads((ref_idx / "index.json").read_text())
    assert a["count"] == b["count"] and [s["count"] for s in a["shards"]] == [s["count"] for s in b["shards"]]
    queries = np.load(ref_out)[:: 997]
    got, want = store.search(idx, queries, 10), store.search(ref_idx, queries, 10)
    np.testing.assert_allclose(got[0], want[0], atol=1e-4)
    assert (got[1] == want[1]).mean() > 0.98  # near-ties may swap between two runs' float rounding


@pytest.mark.parametrize("output", ["e.npy", "e.parquet", "shards"])
def test_index_resumes_a_run_that_died_finishing(tmp_path: Path, cache_dir: Path, output: str) -> None:
    """Killed after its outputs were installed and before its work folder went (the fault hook
    stands for the kill at that instant): --resume --index reads the committed rows back from the
    finished outputs, and the index holds every row."""
    from ignite.index import store
    from resumekit import build_tiny_model, embed_args, make_corpus

    model = build_tiny_model(tmp_path / "tiny")
    corpus = make_corpus(tmp_path / "corpus", n=3000)
    out, idx = tmp_path / output, tmp_path / "idx"
    extra = ("--shard-rows", "1100") if output == "shards" else ()
    args = embed_args(corpus, out, model, "--index", idx, "--index-type", "flat", *extra)
    ref_idx = tmp_path / "ref-idx"
    (tmp_path / "ref").mkdir()
    reference = run_cli(*embed_args(corpus, tmp_path / "ref" / output, model, "--index", ref_idx, "--index-type",
                                    "flat", *extra), cache_dir=cache_dir)
    assert reference.returncode == 0, reference.stderr
    died = run_cli(*args, cache_dir=cache_dir, env={"IGNITE_FAULT": "die-after-finish"})
    assert died.returncode == 137, died.stderr
    resumed = run_cli(*args, "--resume", cache_dir=cache_dir)
    assert resumed.returncode == 0 and "indexing the 3,000 rows" in resumed.stderr, resumed.stderr
    count = json.loads((idx / "index.json").read_text())["count"]
    assert count == json.loads((ref_idx / "index.json").read_text())["count"] > 2900  # the bad records have no vector
    if output == "e.npy":  # each row finds itself first
        emb = np.load(out)
        _, found = store.search(idx, emb[::300], 1)
        assert found[:, 0].tolist() == list(range(0, 3000, 300))


def test_on_disk_merge_equals_shards_and_moves_with_its_folder(ivf_index: tuple[Path, Path], tmp_path: Path) -> None:
    out, index = ivf_index
    copy = tmp_path / "idx"
    shutil.copytree(index, copy)
    for name in ("merged.faiss", "merged.ivfdata"):
        (copy / name).unlink(missing_ok=True)
    info = json.loads((copy / "index.json").read_text())
    info.pop("merged", None)
    (copy / "index.json").write_text(json.dumps(info))
    emb = np.load(out)
    queries = emb[np.random.default_rng(5).choice(len(emb), 50, replace=False)]
    from ignite.index import store

    before = store.search(copy, queries, 10)
    result = run_cli("index", "merge", copy, "--on-disk")
    assert result.returncode == 0, result.stderr
    assert "on disk" in result.stderr and (copy / "merged.ivfdata").stat().st_size > 0
    moved = tmp_path / "moved"
    copy.rename(moved)  # the lists are found beside the index file, wherever it now is
    after = store.search(moved, queries, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], rtol=1e-6)
    searched = run_cli("search", "--index", moved, "rivers and stones", "-k", "3")
    assert searched.returncode == 0, searched.stderr
    assert [line.split("\t")[1] for line in searched.stdout.splitlines()[1:]] == ["1", "2", "3"]
    assert "ondisk" not in searched.stdout and "resizing" not in searched.stdout


def test_the_pre_pass_sample_is_uniform_and_names_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index's pre-pass sample (drawn per window with NumPy): every kept text is the record
    of its row, unreadable records are never kept, the rows are spread uniformly over the input,
    replaced texts are let go, and the native and Python readers give the same sample."""
    from ignite.index import sample as sample_module
    from ignite.index.inline import sample_records
    from ignite.io.inputs import expand_inputs

    n = 120_000
    lines = [json.dumps({"text": f"record {i} " + "é" * (i % 5)}) if i % 11 else "{not json" for i in range(n)]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    files = expand_inputs([str(src)])
    monkeypatch.setattr(sample_module, "COMPACT_BYTES", 0)  # compact as often as it may
    sample = sample_records(files, "text", 5000)
    assert sample.total == n and sample.seen == n - len(range(0, n, 11)) and len(sample) == 5000
    rows = sample.rows
    assert len(set(rows.tolist())) == 5000 and not (rows % 11 == 0).any()
    assert sample.texts(np.arange(5000)) == [f"record {r} " + "é" * (r % 5) for r in rows.tolist()]
    counts = np.bincount(rows * 10 // n, minlength=10)  # ~500 a tenth; 5 sigma is ~110
    assert (abs(counts - 500) < 110).all(), counts
    assert sum(len(c) for c in sample._chunks) <= 2 * int(sample._length.sum())
    monkeypatch.setenv("IGNITE_READER", "python")
    python = sample_records(files, "text", 5000)
    assert (python.rows == rows).all()
