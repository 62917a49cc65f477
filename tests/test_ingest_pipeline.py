"""The native ingest pipeline (ignite._engine.IngestPipeline, taken by run_pipeline for JSONL and
text inputs) against the Python stages (IGNITE_PIPELINE=python): the same outputs, row for row,
on generated and real data; many one-record files give what one file gives; a run stopped mid-way
and resumed gives what an uninterrupted run gives. The backend is deterministic per row (a
function of the row's own tokens), so outputs compare exactly whatever the batching."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import read_jsonl_zst, shared_file

pytest.importorskip("ignite._engine")
from ignite import _engine  # noqa: E402
from ignite.pipeline.signals import StopSignals  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(_engine, "IngestPipeline"),
                                reason="ignite._engine was built without the native reader (zstd, zlib, simdjson)")


class _RowRunner:
    """Embeds each row as a function of its own tokens only; can ask the run to stop after a
    number of batches (as a signal would)."""

    name, device, dtype, dim = "rows", "cpu", "fp32", 4

    def __init__(self, stop_after: int | None = None, stop: StopSignals | None = None) -> None:
        self.calls, self.stop_after, self.stop = 0, stop_after, stop

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.stop is not None and self.calls == self.stop_after:
            self.stop.signum = 15  # what a SIGTERM while the pipeline runs records
            self.stop.event.set()
        ids = input_ids.astype(np.int64) * attention_mask
        positions = np.arange(1, ids.shape[1] + 1, dtype=np.int64)
        return np.stack([attention_mask.sum(axis=1), ids.sum(axis=1) % 9973, (ids * positions).sum(axis=1) % 10007,
                         np.ones(len(ids), np.int64)], axis=1).astype(np.float32)


def _embed(tmp: Path, inputs: list[Path], model_dir: Path, *, python: bool, monkeypatch: pytest.MonkeyPatch,
           id_field: str | None = "id", window_records: int = 64, batch_tokens: int = 512, prefix: str = "",
           stop_after: int | None = None, resume: bool = False,
           runner: _RowRunner | None = None):  # type: ignore[no-untyped-def]
    from ignite.config import EmbedConfig, ModelOptions
    from ignite.io.inputs import expand_inputs
    from ignite.io.manifest import WorkDir
    from ignite.pipeline.run import run_pipeline
    from ignite.pipeline.tokenize import WindowTokenizer

    monkeypatch.setenv("IGNITE_PIPELINE", "python" if python else "native")
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / "emb.npy"
    options = ModelOptions(pooling="mean", normalize=False, max_length=128, prefix=prefix, dim=None)
    cfg = EmbedConfig(inputs=tuple(inputs), output=out, output_kind="npy", field="text", id_field=id_field,
                      model_name="test", model_path=model_dir, model=options, backend="rows", dtype="fp32",
                      output_dtype="float32", batch_tokens=batch_tokens, window_records=window_records,
                      shard_rows=1000, cache_dir=tmp, threads=1, quiet=True, overwrite=False,
                      errors_path=tmp / "errors.jsonl", max_errors=None)
    work = WorkDir(out)
    if resume:
        loaded = work.load()
        assert loaded is not None
        start = loaded[1]
    else:
        start = work.create({"format": 1, "inputs": [], "options": {}})
    tokenizer = WindowTokenizer(model_dir / "tokenizer.json", 128, prefix, threads=2)
    stop = StopSignals()
    runner = runner or _RowRunner(stop_after, stop)
    stats = run_pipeline(cfg, expand_inputs([str(p) for p in inputs]), runner, tokenizer, work, start, stop)
    return stats, out


def _outputs(out: Path) -> tuple[np.ndarray, dict[str, list]]:
    meta = pq.read_table(out.with_name(out.stem + ".ids.parquet")).to_pydict()
    return np.load(out), meta


def _same_run(a: Path, b: Path, columns: tuple[str, ...] = ("row", "id", "file", "line", "status")) -> None:
    emb_a, meta_a = _outputs(a)
    emb_b, meta_b = _outputs(b)
    assert emb_a.shape == emb_b.shape
    np.testing.assert_array_equal(emb_a, emb_b)
    for column in columns:
        assert meta_a[column] == meta_b[column], column


def test_status_codes_agree() -> None:
    """The native reader's and pipeline's uint8 codes are the first codes of the one table."""
    from ignite.rows.status import BACKEND_ERROR, STATUS_NAMES

    assert _engine.STATUS_NAMES == STATUS_NAMES[:BACKEND_ERROR + 1]
    assert _engine.READER_STATUS_NAMES == STATUS_NAMES[:BACKEND_ERROR]


def _generated_inputs(folder: Path) -> list[Path]:
    """JSONL with every kind of bad record, ids missing and of other types, blank lines, long and
    non-Latin texts; a text file; a zstd file; an empty file."""
    rng = random.Random(3)
    folder.mkdir(parents=True, exist_ok=True)
    words = ["river", "stone", "Ünïcode", "東京", "naïve", "😀", "co-operate", "x" * 40, "ﬁne", "Ａ"]
    lines = []
    for i in range(700):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 60)))
        kind = rng.randrange(40)
        if kind == 0:
            lines.append("{not json")
        elif kind == 1:
            lines.append(json.dumps({"id": f"r{i}"}))
        elif kind == 2:
            lines.append(json.dumps({"id": f"r{i}", "text": None}))
        elif kind == 3:
            lines.append(json.dumps({"id": f"r{i}", "text": 12}))
        elif kind == 4:
            lines.append(json.dumps({"text": text}))  # no id
        elif kind == 5:
            lines.append("")
        elif kind == 6:
            lines.append(json.dumps({"id": i, "text": text}))
        else:
            lines.append(json.dumps({"id": f"r{i}", "text": text}, ensure_ascii=rng.random() < 0.5))
    a = folder / "a.jsonl"
    a.write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    b = folder / "b.txt"
    b.write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(150)) + "\n",
                 encoding="utf-8")
    c = folder / "c.jsonl.zst"
    c.write_bytes(zstandard.ZstdCompressor().compress(("\n".join(lines[300:]) + "\n").encode()))
    empty = folder / "d.jsonl"
    empty.write_text("")
    tail = folder / "e.jsonl"
    tail.write_text(json.dumps({"id": "last", "text": "the last one"}) + "\n")
    return [a, b, c, empty, tail]


@pytest.mark.parametrize("window_records", [7, 64, 4096])
def test_native_matches_python_on_generated_data(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                 window_records: int) -> None:
    inputs = _generated_inputs(tmp_path / "in")
    old_stats, old = _embed(tmp_path / "python", inputs, model_dir, python=True, monkeypatch=monkeypatch,
                            window_records=window_records)
    new_stats, new = _embed(tmp_path / "native", inputs, model_dir, python=False, monkeypatch=monkeypatch,
                            window_records=window_records)
    _same_run(old, new)
    assert new_stats.statuses == old_stats.statuses and new_stats.records == old_stats.records
    assert (tmp_path / "python" / "errors.jsonl").read_bytes() == (tmp_path / "native" / "errors.jsonl").read_bytes()


@pytest.mark.parametrize("corpus", ["passages.jsonl.zst", "multilingual.jsonl.zst"])
def test_native_matches_python_on_real_data(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                            corpus: str) -> None:
    """Real passages, and multilingual text, where the native tokenizer flags texts for HF
    tokenizers to re-encode (the pipeline calls back for those)."""
    records = read_jsonl_zst(shared_file(corpus), 3000)
    src = tmp_path / "real.jsonl.zst"
    src.write_bytes(zstandard.ZstdCompressor().compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    id_field = "id" if "id" in records[0] else None
    _, old = _embed(tmp_path / "python", [src], model_dir, python=True, monkeypatch=monkeypatch, id_field=id_field,
                    window_records=512, prefix="passage: ")
    _, new = _embed(tmp_path / "native", [src], model_dir, python=False, monkeypatch=monkeypatch, id_field=id_field,
                    window_records=512, prefix="passage: ")
    _same_run(old, new)


def test_one_record_files_batch_like_one_file(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 one-record files: the same embeddings, ids and statuses as one file of the same
    records, each row naming its own file at line 1; and batches as full as one file's."""
    n = 20_000
    rng = random.Random(9)
    records = [{"id": f"doc{i}", "text": " ".join(rng.choice(["alpha", "beta", "gamma", "delta"])
                                                  for _ in range(rng.randint(1, 30)))} for i in range(n)]
    folder = tmp_path / "many"
    folder.mkdir()
    for i, r in enumerate(records):
        (folder / f"{i:05d}.jsonl").write_text(json.dumps(r) + "\n")
    one = tmp_path / "one.jsonl"
    one.write_text("".join(json.dumps(r) + "\n" for r in records))
    many_stats, many = _embed(tmp_path / "out-many", [folder], model_dir, python=False, monkeypatch=monkeypatch,
                              window_records=2048, batch_tokens=2048)
    one_stats, single = _embed(tmp_path / "out-one", [one], model_dir, python=False, monkeypatch=monkeypatch,
                               window_records=2048, batch_tokens=2048)
    _same_run(many, single, columns=("row", "id", "status"))
    meta = _outputs(many)[1]
    assert meta["file"] == [str(folder / f"{i:05d}.jsonl") for i in range(n)]
    assert set(meta["line"]) == {1}
    assert many_stats.batches == one_stats.batches
    assert many_stats.padding_efficiency == one_stats.padding_efficiency


def test_stopped_and_resumed_matches_uninterrupted(tmp_path: Path, model_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop (as a signal gives) commits the windows in flight, across file boundaries; the
    resumed run skips exactly what was committed."""
    inputs = _generated_inputs(tmp_path / "in")
    folder = tmp_path / "in" / "small"
    folder.mkdir()
    for i in range(300):
        (folder / f"{i:03d}.jsonl").write_text(json.dumps({"id": f"s{i}", "text": f"small file {i}"}) + "\n")
    inputs.append(folder)
    whole_stats, whole = _embed(tmp_path / "whole", inputs, model_dir, python=False, monkeypatch=monkeypatch,
                      window_records=50, batch_tokens=256)
    for stop_after in (3, 40):
        part = tmp_path / f"part-{stop_after}"
        stats, _ = _embed(part, inputs, model_dir, python=False, monkeypatch=monkeypatch, window_records=50,
                          batch_tokens=256, stop_after=stop_after)
        assert stats.interrupted == 15
        assert 0 < stats.records < whole_stats.records
        _, resumed = _embed(part, inputs, model_dir, python=False, monkeypatch=monkeypatch, window_records=50,
                            batch_tokens=256, resume=True)
        _same_run(whole, resumed)
        assert (tmp_path / "whole" / "errors.jsonl").read_bytes() == (part / "errors.jsonl").read_bytes()



class _KeepingRunner(_RowRunner):
    """Keeps every batch's ids (a view whose base is the native batch) past the run."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[np.ndarray] = []

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.kept.append(input_ids)
        return super().run(input_ids, attention_mask)


def test_a_batch_outliving_its_pipeline_goes_first(tmp_path: Path, model_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches kept past the run (as a traceback cycle collected later keeps one) hold the last
    reference to the pipeline: each gives its buffers back to the pool before the pool goes. The
    other order freed the pool first and aborted a later garbage collection."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": f"record {i} " * (i % 7 + 1)}) + "\n"
                           for i in range(3000)))
    for round_ in range(20):
        runner = _KeepingRunner()
        _embed(tmp_path / f"r{round_}", [src], model_dir, python=False, monkeypatch=monkeypatch,
               window_records=100, batch_tokens=256, runner=runner)
        assert len(runner.kept) > 10
        expected = [ids.copy() for ids in runner.kept]
        assert all((a == b).all() for a, b in zip(runner.kept, expected))  # still readable
        runner.kept.clear()  # the last batch frees the pipeline


class _SwitchRecordingRunner(_RowRunner):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[float] = set()

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import sys

        self.seen.add(sys.getswitchinterval())
        return super().run(input_ids, attention_mask)


def test_the_run_takes_short_gil_turns_and_gives_them_back(tmp_path: Path, model_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """While the stages run, a CPU-bound Python thread holds the GIL at most 0.5 ms at a time (so
    the workers' and writer's short turns do not wait 5 ms each); the caller's interval returns."""
    import sys

    from ignite.pipeline.run import GIL_SWITCH_SECONDS

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": f"record {i}"}) + "\n" for i in range(300)))
    before = sys.getswitchinterval()
    runner = _SwitchRecordingRunner()
    _embed(tmp_path / "out", [src], model_dir, python=False, monkeypatch=monkeypatch, runner=runner)
    assert runner.seen and max(runner.seen) <= GIL_SWITCH_SECONDS + 1e-9
    assert sys.getswitchinterval() == before


ZEBRA = 29145  # "zebra" in all-MiniLM-L6-v2's vocabulary: the token the failing backends fail on


class _NullRunner:
    """Zeros of dim 4, from Python (run) and, with `native`, as an ignite._engine.NullBackend the
    workers run with no Python per batch; with `fail_token`, both fail on any batch holding it."""

    name, device, dtype, dim = "null", "cpu", "fp32", 4

    def __init__(self, native: bool, fail_token: int | None = None) -> None:
        self.native, self.fail_token, self.calls = native, fail_token, 0

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.fail_token is not None and (input_ids == self.fail_token).any():
            raise RuntimeError(f"token {self.fail_token} in the batch")
        return np.zeros((len(input_ids), self.dim), np.float32)

    def native_backend(self) -> Any:
        return _engine.NullBackend(self.dim, self.fail_token) if self.native else None


def _zebra_inputs(folder: Path) -> tuple[list[Path], int]:
    """Records of 1 to 20 words, every 37th holding "zebra", and bad records among them; the
    number of good records with "zebra"."""
    rng = random.Random(5)
    folder.mkdir(parents=True, exist_ok=True)
    lines, zebras = [], 0
    for i in range(1500):
        words = [rng.choice(["river", "stone", "naïve", "東京"]) for _ in range(rng.randint(1, 20))]
        if i % 101 == 0:
            lines.append("{not json")
            continue
        if i % 37 == 0:
            words.insert(rng.randrange(len(words) + 1), "zebra")
            zebras += 1
        lines.append(json.dumps({"id": f"r{i}", "text": " ".join(words)}))
    src = folder / "in.jsonl.zst"
    src.write_bytes(zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode()))
    return [src], zebras


@pytest.mark.parametrize("fail_token", [None, ZEBRA])
def test_native_workers_match_python_workers(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                             fail_token: int | None) -> None:
    """A runner with a native backend runs its batches in the native worker loop (Python calls its
    run() only to retry and split the batches that failed there): the same rows, ids, statuses
    and errors as Python workers on the same runner, and as the Python stages."""
    inputs, zebras = _zebra_inputs(tmp_path / "in")
    runs = {}
    for name, python, native in (("python", True, False), ("python-workers", False, False),
                                 ("native-workers", False, True)):
        runner = _NullRunner(native, fail_token)
        stats, out = _embed(tmp_path / name, inputs, model_dir, python=python, monkeypatch=monkeypatch,
                            window_records=100, batch_tokens=256, runner=runner)  # type: ignore[arg-type]
        runs[name] = stats, out, runner
    (py_stats, py_out, py_runner), (_, _, native_ingest_runner), (stats, out, runner) = runs.values()
    for name in ("python-workers", "native-workers"):
        _same_run(py_out, runs[name][1])
        assert runs[name][0].statuses == py_stats.statuses and runs[name][0].records == py_stats.records
        assert (tmp_path / "python" / "errors.jsonl").read_bytes() == (tmp_path / name / "errors.jsonl").read_bytes()
    if fail_token is None:
        assert runner.calls == 0 and native_ingest_runner.calls > 0  # no Python per batch
        assert "backend_error" not in stats.statuses
    else:
        assert stats.statuses["backend_error"] == zebras
        assert 0 < runner.calls < py_runner.calls  # only the failed batches, retried and split
