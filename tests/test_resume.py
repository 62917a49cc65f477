"""Crash-safe, resumable runs through the real CLI: SIGKILL at random moments and resume until
done gives the outputs of an uninterrupted run; --resume refuses changed inputs or options."""
from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import run_cli
from ignite.io import readers
from ignite.io.inputs import expand_inputs
from resumekit import FAST, assert_same_npy_outputs, build_tiny_model, embed_args, manifest, start_cli, wait_for_pipeline
from resumekit import corpus, reference, tiny_model  # noqa: F401 - shared fixtures

KILLS = 20
SEED = 20_240_611
HEADER = 128  # bytes of the .npy header reserved in a partial file


def _check_committed_state(out: Path, total: int) -> dict | None:
    """What a crash must leave: a readable manifest, partial files holding at least the committed
    bytes, and no finished-looking output unless every record is committed."""
    state = manifest(out)
    work = out.with_name(out.name + ".ignite")
    if state is None:  # killed before the first commit, or after the last step of finishing
        assert out.exists() == out.with_name("emb.ids.parquet").exists() and not work.exists()
        return None
    assert 0 <= state["rows"] <= total
    if not state["done"]:
        assert not out.exists() and not out.with_name("emb.ids.parquet").exists()
        # (A kill between creating the work folder and opening the files leaves no files: fine.)
        for path, size in ((work / "emb.npy.partial", HEADER + state["rows"] * 32 * 4 if state["rows"] else 0),
                           (work / "emb.npy.meta", state["meta_bytes"]),
                           (out.with_name("errors.jsonl"), state["errors_bytes"])):
            assert (path.stat().st_size if path.exists() else 0) >= size, path
    return state


def test_sigkill_at_random_moments_then_resume(tmp_path: Path, corpus: list[Path], tiny_model: Path,
                                               cache_dir: Path, reference: tuple[Path, float]) -> None:
    """SIGKILL at >= 20 seeded random moments after the model is loaded (opening the work folder,
    reading, inference, commits, finishing), `--resume` after each, until the run completes; then
    again from scratch until enough kills have landed. Every completed run equals the
    uninterrupted one, --errors file included."""
    ref, span = reference
    total = len(np.load(ref))
    rng = random.Random(SEED)
    kills: list[tuple[float, int, int]] = []  # delay, committed rows before, after
    episode = 0
    while len(kills) < KILLS:
        episode += 1
        folder = tmp_path / f"episode{episode}"
        folder.mkdir()
        out = folder / "emb.npy"
        for attempt in range(100):
            before = (manifest(out) or {}).get("rows", 0)
            log = folder / f"stderr{attempt}.txt"
            proc = start_cli(embed_args(corpus, out, tiny_model, "--errors", folder / "errors.jsonl", "--resume"),
                             cache_dir, log)
            # Aim within what is left of the run plus its fixed costs (opening, finishing), so
            # most kills land while it works.
            delay = rng.uniform(0, 0.2 + 1.1 * span * (1 - before / total))
            if wait_for_pipeline(proc, log):
                time.sleep(delay)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                state = _check_committed_state(out, total)
                kills.append((delay, before, state["rows"] if state else total if out.exists() else 0))
                continue
            assert proc.returncode == 0, log.read_text()
            break
        assert not out.with_name("emb.npy.ignite").exists()
        assert_same_npy_outputs(out, ref)
        assert (folder / "errors.jsonl").read_bytes() == ref.with_name("errors.jsonl").read_bytes()
    # The kills are spread over the run: many landed after some rows were committed and before the end.
    print("kills (delay s, committed rows before, after):", [(round(d, 3), b, a) for d, b, a in kills])
    midway = [k for k in kills if 0 < k[2] < total]
    assert len(midway) >= KILLS // 3, kills


@pytest.mark.parametrize("kind", ["parquet", "shards"])
def test_sigkill_and_resume_parquet_and_shards(tmp_path: Path, corpus: list[Path], tiny_model: Path,
                                               cache_dir: Path, reference: tuple[Path, float], kind: str) -> None:
    """The other output kinds under a few kills: a .parquet (built at the end from the work
    folder) and shards (sealed as they fill, during the run)."""
    ref, span = reference
    rng = random.Random(SEED + len(kind))
    kills, episode = 0, 0
    while kills < 5:
        episode += 1
        out = tmp_path / f"ep{episode}" / ("emb.parquet" if kind == "parquet" else "shards")
        out.parent.mkdir()
        extra = ["--shard-rows", "3000"] if kind == "shards" else []
        for attempt in range(100):
            log = out.parent / f"stderr{attempt}.txt"
            before = (manifest(out) or {}).get("rows", 0)
            proc = start_cli(embed_args(corpus, out, tiny_model, "--resume", *extra), cache_dir, log)
            if wait_for_pipeline(proc, log):
                time.sleep(rng.uniform(0, 0.2 + 1.1 * span * (1 - before / 20_000)))
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                kills += 1
                continue
            assert proc.wait() == 0, log.read_text()
            break
        _check_other_kind(out, ref, kind)


def _check_other_kind(out: Path, ref: Path, kind: str) -> None:
    emb_ref = np.load(ref)
    meta_ref = pq.read_table(ref.with_name("emb.ids.parquet"))
    if kind == "parquet":
        table = pq.read_table(out)
        assert table.column("id").to_pylist() == meta_ref.column("id").to_pylist()
        assert table.column("status").to_pylist() == meta_ref.column("status").to_pylist()
        emb = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(len(table), -1)
    else:
        names = sorted(p.name for p in out.iterdir())
        assert names == [f"part-{i:05d}.{ext}" for i in range(7) for ext in ("npy", "parquet")]
        parts = [np.load(out / f"part-{i:05d}.npy") for i in range(7)]
        assert [len(p) for p in parts] == [3000] * 6 + [2000]
        emb = np.concatenate(parts)
        meta = [pq.read_table(out / f"part-{i:05d}.parquet") for i in range(7)]
        assert sum((m.column("row").to_pylist() for m in meta), []) == list(range(20_000))
        assert sum((m.column("id").to_pylist() for m in meta), []) == meta_ref.column("id").to_pylist()
    np.testing.assert_allclose(emb, emb_ref, atol=1e-5)
    assert not out.with_name(out.name + ".ignite").exists()


def test_resume_refuses_changed_inputs_and_options(tmp_path: Path, corpus: list[Path], tiny_model: Path,
                                                   cache_dir: Path, reference: tuple[Path, float]) -> None:
    """A run stopped with work committed (here by --max-errors 0 at the first bad record), then
    resumed with something changed: refused with exit 2, naming what changed, nothing touched."""
    ref, _ = reference
    inputs = [tmp_path / p.name for p in corpus]
    for src, dst in zip(corpus, inputs):
        shutil.copy2(src, dst)
    out = tmp_path / "emb.npy"
    first = run_cli(*embed_args(inputs, out, tiny_model, "--max-errors", "0"), cache_dir=cache_dir)
    assert first.returncode == 3, first.stderr
    committed = manifest(out)
    assert committed is not None and 0 < committed["rows"] < 20_000
    manifest_bytes = out.with_name("emb.npy.ignite").joinpath("manifest.json").read_bytes()

    other_model = build_tiny_model(tmp_path / "other-model", seed=1)
    cases = [
        (["--model", other_model], f"--model was \"{tiny_model}\", now \"{other_model}\""),
        (["--max-length", "64"], "--max-length was 128, now 64"),
        (["--dim", "16"], "--dim was not set, now 16"),
        (["--field", "body"], "--field was \"text\", now \"body\""),
        (["--output-dtype", "float16"], "--output-dtype was \"float32\", now \"float16\""),
    ]
    for flags, message in cases:
        args = embed_args(inputs, out, tiny_model, "--resume")
        model_at = args.index("--model")
        args = args[:model_at] + args[model_at + 2:] if flags[0] == "--model" else args
        result = run_cli(*args, *flags, cache_dir=cache_dir)
        assert result.returncode == 2, (flags, result.stderr)
        assert message in result.stderr, (flags, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr  # one line

    # An input file that changed: its size, then only its modification time.
    stat = inputs[1].stat()
    original = inputs[1].read_bytes()
    inputs[1].write_bytes(original + original[-100:])
    result = run_cli(*embed_args(inputs, out, tiny_model, "--resume"), cache_dir=cache_dir)
    assert result.returncode == 2 and f"input {inputs[1].resolve()} changed since the run began (size" in result.stderr
    inputs[1].write_bytes(original)
    result = run_cli(*embed_args(inputs, out, tiny_model, "--resume"), cache_dir=cache_dir)
    assert result.returncode == 2 and "(modification time differs)" in result.stderr, result.stderr
    os.utime(inputs[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # A missing input.
    result = run_cli(*embed_args(inputs[:2], out, tiny_model, "--resume"), cache_dir=cache_dir)
    assert result.returncode == 2 and f"input {inputs[2].resolve()} was part of the run" in result.stderr
    # Without --resume (or --overwrite) the interrupted run is not touched either.
    result = run_cli(*embed_args(inputs, out, tiny_model), cache_dir=cache_dir)
    assert result.returncode == 2 and "pass --resume to continue it, or --overwrite" in result.stderr
    assert out.with_name("emb.npy.ignite").joinpath("manifest.json").read_bytes() == manifest_bytes

    # The same inputs and options (--max-errors may change) resume and finish.
    result = run_cli(*embed_args(inputs, out, tiny_model, "--resume", "--max-errors", "100"), cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    assert f"resuming {out} after {committed['rows']:,} committed rows" in result.stderr
    emb, emb_ref = np.load(out), np.load(ref)
    assert emb.shape == emb_ref.shape
    np.testing.assert_allclose(emb, emb_ref, atol=1e-5)
    ids = pq.read_table(out.with_name("emb.ids.parquet")).column("id").to_pylist()
    assert ids == pq.read_table(ref.with_name("emb.ids.parquet")).column("id").to_pylist()


def test_resume_on_first_run_and_after_completion(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    """--resume is safe to always pass: it starts a first run, and on a finished output it does
    nothing. Without it, a finished output is refused; --overwrite redoes it."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": f"record {i}"}) + "\n" for i in range(50)))
    out = tmp_path / "emb.npy"
    args = ["embed", "--input", src, "--output", out, "--model", tiny_model, *FAST]
    first = run_cli(*args, "--resume", cache_dir=cache_dir)
    assert first.returncode == 0 and np.load(out).shape == (50, 32), first.stderr
    again = run_cli(*args, "--resume", cache_dir=cache_dir)
    assert again.returncode == 0 and "already complete" in again.stderr, again.stderr
    refused = run_cli(*args, cache_dir=cache_dir)
    assert refused.returncode == 2 and "already exists; pass --overwrite" in refused.stderr
    both = run_cli(*args, "--resume", "--overwrite", cache_dir=cache_dir)
    assert both.returncode == 2 and "not both" in both.stderr
    redo = run_cli(*args, "--overwrite", cache_dir=cache_dir)
    assert redo.returncode == 0 and np.load(out).shape == (50, 32), redo.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.ids.parquet", "emb.npy", "emb.report.json", "in.jsonl"]


def _read(path: Path, skip: int, window: int = 4) -> tuple[list[str], list[int], list[bool]]:
    reader = readers.RecordReader(expand_inputs([str(path)])[0], "text", None, window, skip_lines=skip)
    texts, lines, last = [], [], []
    for w in reader.windows():
        texts += w.texts
        lines += w.lines.tolist()
        last.append(w.last)
    return texts, lines, last


@pytest.mark.parametrize("reader", ["python", "native"])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.zst", ".jsonl.gz", ".txt"])
def test_reader_skips_committed_lines_unparsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str,
                                               reader: str) -> None:
    """Skipping k lines gives exactly the records after line k, with their own line numbers, and
    parses none of the skipped ones (counted on the Python reader, whose parser can be watched);
    only the window ending the file is marked last."""
    if reader == "native" and not readers.native_reader_available():
        pytest.skip("ignite._engine was built without the native reader")
    monkeypatch.setenv("IGNITE_READER", reader)
    monkeypatch.setattr(readers, "READ_CHUNK", 16)  # lines cross chunk boundaries
    rows = [json.dumps({"text": f"record {i}"}) if suffix != ".txt" else f"record {i}" for i in range(23)]
    rows[5] = rows[9] = ""  # blank lines: not records in JSONL, empty records in TXT
    data = ("\ufeff" + "\r\n".join(rows) + "\r\n").encode()
    path = tmp_path / f"in{suffix}"
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if suffix.endswith(".zst")
                     else gzip.compress(data) if suffix.endswith(".gz") else data)
    full_texts, full_lines, full_last = _read(path, 0)
    assert full_last[-1] and not any(full_last[:-1])
    parsed: list[bytes] = []
    original = readers.RecordReader._parse_json
    monkeypatch.setattr(readers.RecordReader, "_parse_json", lambda self, raw: parsed.append(raw) or original(self, raw))
    for skip in (1, 5, 6, 10, 16, 22, 23):
        parsed.clear()
        texts, lines, last = _read(path, skip)
        keep = [i for i, line in enumerate(full_lines) if line > skip]
        assert lines == [full_lines[i] for i in keep] and texts == [full_texts[i] for i in keep], skip
        assert not last or (last[-1] and not any(last[:-1]))
        if suffix != ".txt" and reader == "python":
            assert len(parsed) == len(keep), skip


def test_reader_skips_parquet_rows(tmp_path: Path) -> None:
    import pyarrow as pa

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(50)]}), path, row_group_size=7)
    for skip in (0, 3, 7, 20, 49, 50):
        texts, lines, last = _read(path, skip, window=6)
        assert texts == [f"row {i}" for i in range(skip, 50)] and lines == list(range(skip + 1, 51))
        assert not last or (last[-1] and not any(last[:-1]))


def test_work_folder_is_discarded_whole(tmp_path: Path) -> None:
    """The work folder goes away by an atomic rename before it is deleted, so a kill during the
    deletion never leaves a manifest without its run.json; leftovers of such a kill are swept."""
    from ignite.io.manifest import WorkDir

    work = WorkDir(tmp_path / "emb.npy")
    stale = tmp_path / f".{work.path.name}.discard-1"
    stale.mkdir()
    (stale / "manifest.json").write_text("{}")  # what a kill in the middle of a deletion leaves
    work.create({"model": "m"})
    assert work.load() is not None and not stale.exists()
    work.remove()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
