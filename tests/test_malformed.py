"""Malformed input through the real CLI: every bad record keeps its row with a status and an
--errors line, damaged archives stop their file (exit 4, after committing what was read), and a
record the backend fails on is isolated by retry and bisection."""
from __future__ import annotations

import gzip
import json
import random
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import run_cli
from ignite.backends.base import Capabilities
from resumekit import FAST, build_tiny_model, manifest, sentence


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


def _embed(*args: object, cache_dir: Path, model: Path):  # type: ignore[no-untyped-def]
    return run_cli("embed", *args, "--model", model, *FAST, cache_dir=cache_dir)


def _meta(out: Path) -> list[dict]:
    return pq.read_table(out.with_name(out.stem + ".ids.parquet")).to_pylist()


def test_bad_records_keep_their_rows(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    """Invalid UTF-8, bad JSON, a missing field, a non-string field, a 10 MB line, an empty file
    and files of only newlines: exit 0, statuses, warnings and --errors lines as documented."""
    bad = tmp_path / "bad.jsonl"
    ten_mb = json.dumps({"id": "big", "text": "word " * 2_000_000}).encode()
    bad.write_bytes(b"\n".join([
        b'{"id": "a", "text": "fine"}',
        b'{"id": "b", "text": "bad \xff bytes"}',
        b'{"id": "c", "text": "unterminated',
        b'{"id": "d", "body": "no text"}',
        b'{"id": "e", "text": 42}',
        ten_mb,
        b'{"id": "f", "text": ["a", "list"]}',
        b'{"id": "g", "text": "last"}',
    ]) + b"\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    newlines = tmp_path / "newlines.jsonl"
    newlines.write_bytes(b"\n" * 5)
    newlines_txt = tmp_path / "newlines.txt"
    newlines_txt.write_bytes(b"\n" * 3)
    out, errors = tmp_path / "emb.npy", tmp_path / "errors.jsonl"
    result = _embed("--input", bad, empty, newlines, newlines_txt, "--output", out, "--id-field", "id",
                    "--errors", errors, cache_dir=cache_dir, model=tiny_model)
    assert result.returncode == 0, result.stderr
    meta = _meta(out)
    expected = [("bad.jsonl", 1, "a", "ok"), ("bad.jsonl", 2, None, "invalid_utf8"),
                ("bad.jsonl", 3, None, "bad_json"), ("bad.jsonl", 4, "d", "missing_field"),
                ("bad.jsonl", 5, "e", "field_not_string"), ("bad.jsonl", 6, "big", "ok"),
                ("bad.jsonl", 7, "f", "field_not_string"), ("bad.jsonl", 8, "g", "ok")] + \
               [("newlines.txt", line, None, "ok") for line in (1, 2, 3)]  # a .txt line is a record, even empty
    assert [(Path(m["file"]).name, m["line"], m["id"], m["status"]) for m in meta] == expected
    assert [m["row"] for m in meta] == list(range(len(expected)))
    emb = np.load(out)
    norms = np.linalg.norm(emb, axis=1)
    for row, (_, _, _, status) in enumerate(expected):
        assert (abs(norms[row] - 1) < 1e-3) if status == "ok" else norms[row] == 0, (row, status, norms[row])
    logged = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [(e["line"], e["row"], e["id"], e["reason"]) for e in logged] == [
        (2, 1, None, "invalid_utf8"), (3, 2, None, "bad_json"), (4, 3, "d", "missing_field"),
        (5, 4, "e", "field_not_string"), (7, 6, "f", "field_not_string")]
    for line, status in ((2, "invalid_utf8"), (3, "bad_json"), (4, "missing_field"), (5, "field_not_string")):
        assert f"bad.jsonl:{line}: {status}" in result.stderr
    assert "5 failed" in result.stderr and "Traceback" not in result.stderr


def _damaged_inputs(folder: Path) -> tuple[Path, Path, int]:
    """A zstd file cut inside a frame, and a gzip file with garbage after its member."""
    rng = random.Random(0)  # varied text: many zstd blocks, so half the file still decodes to records
    lines = [json.dumps({"text": sentence(rng)}) + "\n" for i in range(6000)]
    truncated = folder / "truncated.jsonl.zst"
    blob = zstandard.ZstdCompressor().compress("".join(lines).encode())
    truncated.write_bytes(blob[: len(blob) // 2])
    tail = folder / "tail.jsonl.gz"
    tail.write_bytes(gzip.compress("".join(lines[:100]).encode()) + b"garbage after the gzip member")
    return truncated, tail, 100


def test_a_file_without_the_field_keeps_its_rows(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    """Only the first file with records is checked for --field at start (a typo guard): a later
    file without it is bad data, and its rows say so."""
    first, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text('{"text": "one"}\n{"text": "two"}\n')
    other.write_text('{"body": "three"}\n{"body": "four"}\n')
    out = tmp_path / "emb.npy"
    result = _embed("--input", first, other, "--output", out, cache_dir=cache_dir, model=tiny_model)
    assert result.returncode == 0, result.stderr
    assert [m["status"] for m in _meta(out)] == ["ok", "ok", "missing_field", "missing_field"]
    assert (np.load(out)[2:] == 0).all()


def test_damaged_archives_exit_4_after_committing_what_was_read(tmp_path: Path, tiny_model: Path,
                                                                cache_dir: Path) -> None:
    truncated, tail, tail_records = _damaged_inputs(tmp_path)
    after = tmp_path / "after.jsonl"
    after.write_text('{"text": "a good file after the damaged ones"}\n')
    out = tmp_path / "emb.npy"
    result = _embed("--input", truncated, tail, after, "--output", out, "--window-records", "512",
                    cache_dir=cache_dir, model=tiny_model)
    assert result.returncode == 4, result.stderr
    meta = _meta(out)
    read = [m for m in meta if m["file"] == str(truncated)]
    assert 0 < len(read) < 6000 and [m["line"] for m in read] == list(range(1, len(read) + 1))
    assert sum(m["file"] == str(tail) for m in meta) == tail_records
    assert meta[-1]["file"] == str(after) and {m["status"] for m in meta} == {"ok"}
    assert len(np.load(out)) == len(meta)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ignite: error:")]
    assert len(errors) == 2
    assert f"{truncated}: damaged after line {len(read)}" in errors[0] and "truncated" in errors[0]
    assert f"{tail}: damaged after line {tail_records}" in errors[1]
    assert not out.with_name("emb.npy.ignite").exists()


def test_damage_is_remembered_across_a_resume(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    """A damaged file committed before an interruption still gives exit 4 when the resumed run
    ends, though the resumed run does not read it again."""
    truncated, _, _ = _damaged_inputs(tmp_path)
    later = tmp_path / "later.jsonl"
    later.write_text('{"text": "ok"}\n{"text": 7}\n{"text": "ok again"}\n')
    out = tmp_path / "emb.npy"
    args = ["--input", truncated, later, "--output", out, "--window-records", "512"]
    first = _embed(*args, "--max-errors", "0", cache_dir=cache_dir, model=tiny_model)
    assert first.returncode == 3 and "more than --max-errors 0" in first.stderr, first.stderr
    state = manifest(out)
    assert state is not None and state["damaged"] and state["file"] == 1
    resumed = _embed(*args, "--resume", "--max-errors", "5", cache_dir=cache_dir, model=tiny_model)
    assert resumed.returncode == 4, resumed.stderr
    assert f"{truncated}: damaged after line" in resumed.stderr
    meta = _meta(out)
    assert [m["status"] for m in meta if m["file"] == str(later)] == ["ok", "field_not_string", "ok"]


class _PoisonRunner:
    """A backend that fails on any batch holding token `poison` (like a kernel that crashes on
    one input) and otherwise returns a deterministic vector per row."""

    name, device, dtype, dim = "poison", "cpu", "fp32", 4

    def __init__(self, poison: int | None, fail_first_calls: int = 0) -> None:
        self.poison, self.fail_first_calls, self.calls = poison, fail_first_calls, 0

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls <= self.fail_first_calls or (self.poison is not None and (input_ids == self.poison).any()):
            raise RuntimeError("kernel failed\nwith a second line")
        lengths = attention_mask.sum(axis=1).astype(np.float32)
        sums = (input_ids * attention_mask).sum(axis=1).astype(np.float32)
        return np.stack([lengths, sums % 97, np.ones_like(lengths), sums % 13], axis=1)


def _run_in_process(tmp_path: Path, tiny_model: Path, runner: _PoisonRunner | list[_PoisonRunner], texts: list[str]):  # type: ignore[no-untyped-def]
    from ignite.config import EmbedConfig, ModelOptions
    from ignite.io.inputs import expand_inputs
    from ignite.io.manifest import WorkDir
    from ignite.pipeline.run import run_pipeline
    from ignite.pipeline.tokenize import WindowTokenizer

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    out = tmp_path / "emb.npy"
    options = ModelOptions(pooling="mean", normalize=False, max_length=32, prefix="", dim=None)
    cfg = EmbedConfig(inputs=(src,), output=out, output_kind="npy", field="text", id_field=None, model_name="tiny",
                      model_path=tiny_model, model=options, backend="poison", dtype="fp32", output_dtype="float32",
                      batch_tokens=64, window_records=16, shard_rows=1000, cache_dir=tmp_path, threads=1, quiet=True,
                      overwrite=False, errors_path=tmp_path / "errors.jsonl", max_errors=None)
    work = WorkDir(out)
    start = work.create({"format": 1, "inputs": [], "options": {}})
    tokenizer = WindowTokenizer(tiny_model / "tokenizer.json", 32)
    return run_pipeline(cfg, expand_inputs([str(src)]), runner, tokenizer, work, start), out


def test_backend_failure_is_retried_then_bisected(tmp_path: Path, tiny_model: Path) -> None:
    from tokenizers import Tokenizer

    poison = Tokenizer.from_file(str(tiny_model / "tokenizer.json")).token_to_id("volcano")
    texts = [f"record {i} about rivers" if i % 17 else f"record {i} about a volcano" for i in range(100)]
    stats, out = _run_in_process(tmp_path, tiny_model, _PoisonRunner(poison), texts)
    meta = _meta(out)
    bad = [i for i, t in enumerate(texts) if "volcano" in t]
    assert [m["row"] for m in meta if m["status"] == "backend_error"] == bad
    assert stats.statuses["backend_error"] == len(bad)
    emb = np.load(out)
    assert (emb[bad] == 0).all() and (emb[[i for i in range(100) if i not in bad]][:, 2] == 1).all()
    assert [json.loads(line)["row"] for line in (tmp_path / "errors.jsonl").read_text().splitlines()] == bad

    # A transient failure: the retry succeeds and nothing is lost.
    (tmp_path / "transient").mkdir()
    stats, out = _run_in_process(tmp_path / "transient", tiny_model, _PoisonRunner(None, fail_first_calls=1), texts)
    assert stats.failed == 0 and (np.load(out)[:, 2] == 1).all()


def test_a_broken_backend_stops_the_run(tmp_path: Path, tiny_model: Path) -> None:
    from ignite.errors import IgniteError

    with pytest.raises(IgniteError, match="failed on every record of 3 batches in a row: kernel failed$"):
        _run_in_process(tmp_path, tiny_model, _PoisonRunner(None, fail_first_calls=10**9),
                        [f"record {i}" for i in range(100)])


def test_a_failed_device_hands_its_batches_to_the_others(tmp_path: Path, tiny_model: Path) -> None:
    """Two workers (as with two GPUs): one breaks for good; the other embeds every batch, so the
    output is complete and nothing is marked failed."""
    texts = [f"record {i} about rivers and stones" for i in range(400)]
    broken, healthy = _PoisonRunner(None, fail_first_calls=10**9), _PoisonRunner(None)
    stats, out = _run_in_process(tmp_path, tiny_model, [broken, healthy], texts)  # type: ignore[arg-type]
    assert stats.failed == 0 and stats.records == 400
    assert (np.load(out)[:, 2] == 1).all()
    assert broken.calls >= 3 and healthy.calls > 0


class _SlowToFailRunner(_PoisonRunner):
    """Fails every batch, the first only after a pause."""

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        if self.calls == 0:
            # Lets the healthy device take every batch the pipeline makes without this one (its
            # window holds the writer, and so the reader, back) and wait for more. The pause
            # sets the scene, it is not measured: a slower machine only makes the case rarer.
            time.sleep(0.5)
        return super().run(input_ids, attention_mask)


def test_a_device_failing_while_the_others_wait_for_batches(tmp_path: Path, tiny_model: Path) -> None:
    """The batch a failing device hands over is the one the whole pipeline waits for: the waiting
    device takes it. (It used to wait for the ingest path forever: CI hung here.)"""
    texts = [f"record {i} about rivers and stones" for i in range(400)]
    broken, healthy = _SlowToFailRunner(None, fail_first_calls=10**9), _PoisonRunner(None)
    stats, out = _run_in_process(tmp_path, tiny_model, [broken, healthy], texts)  # type: ignore[arg-type]
    assert stats.failed == 0 and stats.records == 400
    assert (np.load(out)[:, 2] == 1).all()


def test_a_bad_record_fails_alone_with_two_devices(tmp_path: Path, tiny_model: Path) -> None:
    from tokenizers import Tokenizer

    poison = Tokenizer.from_file(str(tiny_model / "tokenizer.json")).token_to_id("volcano")
    texts = [f"record {i} about rivers" if i % 17 else f"record {i} about a volcano" for i in range(200)]
    stats, out = _run_in_process(tmp_path, tiny_model, [_PoisonRunner(poison), _PoisonRunner(poison)], texts)  # type: ignore[arg-type]
    bad = [i for i, t in enumerate(texts) if "volcano" in t]
    assert [m["row"] for m in _meta(out) if m["status"] == "backend_error"] == bad
    assert (np.load(out)[[i for i in range(200) if i not in bad]][:, 2] == 1).all()


class _SlottedRunner(_PoisonRunner):
    """A runner with two in-flight slots (as TensorRT has). Its first two calls meet at a barrier,
    so they can only both finish if two worker threads run it at once. A runner `paced_by` another
    is slow by counting, not by sleeping: its call k waits until the other has made 3k calls (or
    a second has passed, when the other has nothing left to take)."""

    capabilities = Capabilities(slots=2)

    def __init__(self, poison: int | None = None, fail_first_calls: int = 0,
                 paced_by: _SlottedRunner | None = None) -> None:
        super().__init__(poison, fail_first_calls)
        self.paced_by = paced_by
        self.overlapped = threading.Barrier(2)
        self.started = 0
        self.progress = threading.Condition()

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with self.progress:
            self.started += 1
            k = self.started
        if k <= 2:
            self.overlapped.wait(timeout=30)  # BrokenBarrierError (a failed batch) unless two run at once
        if self.paced_by is not None and k > 2:
            other = self.paced_by
            with other.progress:
                other.progress.wait_for(lambda: other.calls >= 3 * k, timeout=1.0)
        with self.progress:
            try:
                return super().run(input_ids, attention_mask)
            finally:
                self.progress.notify_all()


def test_two_slots_per_device_and_a_slow_device_take_fewer_batches(tmp_path: Path, tiny_model: Path) -> None:
    """Each slot of a runner gets its own worker thread (two batches in flight per device), and
    dynamic scheduling gives a slow device fewer batches; every record is embedded once, in order."""
    texts = [f"record {i} about rivers and stones" for i in range(600)]
    fast = _SlottedRunner()
    slow = _SlottedRunner(paced_by=fast)
    stats, out = _run_in_process(tmp_path, tiny_model, [fast, slow], texts)  # type: ignore[arg-type]
    assert stats.failed == 0 and stats.records == 600  # both barriers were met: two calls at once per device
    emb = np.load(out)
    assert (emb[:, 2] == 1).all()
    # Row i holds record i: the deterministic vector of its own tokens.
    (tmp_path / "solo").mkdir()
    _, solo_out = _run_in_process(tmp_path / "solo", tiny_model, _PoisonRunner(None), texts)
    assert np.array_equal(np.load(solo_out), emb)
    assert fast.calls > 2 * slow.calls > 0


def test_a_broken_two_slot_device_leaves_its_work_to_the_other(tmp_path: Path, tiny_model: Path) -> None:
    texts = [f"record {i} about rivers and stones" for i in range(400)]
    broken, healthy = _SlottedRunner(fail_first_calls=10**9), _SlottedRunner()
    stats, out = _run_in_process(tmp_path, tiny_model, [broken, healthy], texts)  # type: ignore[arg-type]
    assert stats.failed == 0 and stats.records == 400
    assert (np.load(out)[:, 2] == 1).all()
