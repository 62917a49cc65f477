"""Scale-out (issue #17): the shard plan, the scheduler variables of --shard auto, per-shard runs,
`ignite merge` (refusals, and output equal to one run) and the index trained once and merged."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import cosine_rows, run_cli
from resumekit import FAST, build_tiny_model, make_corpus, start_cli

from ignite.errors import UsageError
from ignite.io.inputs import InputFile, expand_inputs
from ignite.io.readers import RecordReader
from ignite.shards.env import resolve_shard
from ignite.io.readers import count_lines
from ignite.shards.plan import plan_shards


def _fake(name: str, size: int) -> InputFile:
    return InputFile(Path(name), "jsonl", None, size)


# -- plan ---------------------------------------------------------------------------------------
def test_plan_is_deterministic_and_keeps_small_files_whole() -> None:
    files = [_fake(f"f{i:03d}.jsonl", 1000 + 37 * (i % 7)) for i in range(100)]
    a, b = plan_shards(files, 7, lambda f: pytest.fail("no file needs cutting")), plan_shards(files, 7)
    assert a == b and a.digest == b.digest
    pieces = [p for shard in a.shards for p in shard]
    assert [p.file for p in pieces] == list(range(100))  # in order, each file once and whole
    assert all(p.first_line == 0 and p.line_count is None for p in pieces)
    share = sum(f.size for f in files) / 7
    assert all(abs(sum(p.bytes for p in s) - share) <= share / 4 for s in a.shards)


def test_plan_cuts_a_big_file_into_line_ranges() -> None:
    files = [_fake("small.jsonl", 100), _fake("big.jsonl", 100_000), _fake("tail.jsonl", 100)]
    plan = plan_shards(files, 4, lambda f: 10_000)
    ranges = [(p.first_line, p.line_count) for s in plan.shards for p in s if p.file == 1]
    assert len(ranges) == 4
    covered = [line for first, count in ranges for line in range(first, first + (count or 10_000 - first))]
    assert covered == list(range(10_000))  # every line once, in order
    sizes = [sum(p.bytes for p in s) for s in plan.shards]
    assert max(sizes) - min(sizes) <= max(sizes) / 10


def test_every_line_in_exactly_one_shard(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus", 3000)
    files = expand_inputs([str(p) for p in corpus])
    whole = [(str(f.path), int(line)) for f in files
             for w in RecordReader(f, "text", None, 256).windows() for line in w.lines]
    for n in (1, 3, 4, 9):
        plan = plan_shards(files, n)
        got = [(str(f.path), int(line)) for i in range(n) for f in plan.inputs(i)
               for w in RecordReader(f, "text", None, 256).windows() for line in w.lines]
        assert got == whole, n
    assert count_lines(files[1]) == 1200


@pytest.mark.parametrize("reader", ["native", "python"])
def test_line_range_and_resume_inside_it(tmp_path: Path, reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IGNITE_READER", reader)
    for item in expand_inputs([str(p) for p in make_corpus(tmp_path / "c", 3000)[:2]]):  # 1,200 lines each
        piece = dataclasses.replace(item, first_line=100, line_count=700)
        windows = list(RecordReader(piece, "text", None, 256).windows())
        lines = [int(x) for w in windows for x in w.lines]
        assert lines[0] == 101 and lines[-1] == 800 and len(lines) == 700
        assert [w.last for w in windows] == [False, False, True]  # the range's end is the file's end
        resumed = [int(x) for w in RecordReader(piece, "text", None, 256, skip_lines=500).windows() for x in w.lines]
        assert resumed == list(range(501, 801))


# -- which shard am I -----------------------------------------------------------------------
@pytest.mark.parametrize("env, shards, want", [
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, None, (2, 4)),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4"}, None, (3, 4)),
    ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3",
      "SLURM_ARRAY_TASK_COUNT": "4"}, 4, (0, 4)),
    ({"JOB_COMPLETION_INDEX": "5"}, 8, (5, 8)),
    ({"AWS_BATCH_JOB_ARRAY_INDEX": "0"}, 2, (0, 2)),
])
def test_shard_auto(env: dict, shards: int | None, want: tuple[int, int]) -> None:
    assert resolve_shard("auto", shards, env) == want


@pytest.mark.parametrize("spec, env, shards, message", [
    ("auto", {}, None, "found no array task variable"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "1"}, None, "SLURM_ARRAY_TASK_MIN"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "6",
              "SLURM_ARRAY_TASK_COUNT": "4"}, None, "stepped or sparse"),
    ("auto", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, 8, "--shards"),
    ("auto", {"JOB_COMPLETION_INDEX": "1"}, None, "needs --shards N"),
    ("auto", {"AWS_BATCH_JOB_ARRAY_INDEX": "x"}, 4, "not a number"),
    ("auto", {"AWS_BATCH_JOB_ARRAY_INDEX": "4"}, 4, "outside 0..3"),
    ("1-4", {}, None, "expected I/N"),
    ("4/4", {}, None, "outside 0..3"),
    ("1/4", {}, 3, "--shards says 3"),
])
def test_shard_errors(spec: str, env: dict, shards: int | None, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace(".", r"\.").replace("-", r"\-")):
        resolve_shard(spec, shards, env)


# -- runs and merge -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict:
    """A corpus, a single-process reference run, and the same job as 4 shards with a trained index."""
    base = tmp_path_factory.mktemp("shards")
    model = build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")
    corpus = [str(p) for p in make_corpus(base / "corpus", 6000)]
    common = ["--model", model, "--id-field", "id", "--window-records", "500", *FAST]
    single = base / "single.npy"
    r = run_cli("embed", "--input", *corpus, "--output", single, *common, cache_dir=cache_dir)
    assert r.returncode == 0, r.stderr
    idx = base / "idx"
    r = run_cli("index", "train", "--input", *corpus, "--index", idx, "--index-type", "ivf", "--model", model, *FAST,
                cache_dir=cache_dir)
    assert r.returncode == 0, r.stderr
    out = base / "out"
    for i in range(4):
        r = run_cli("embed", "--input", *corpus, "--output", out, "--shard", f"{i}/4", "--index", idx, *common,
                    cache_dir=cache_dir)
        assert r.returncode == 0, r.stderr
    return {"base": base, "corpus": corpus, "common": common, "single": single, "out": out, "idx": idx}


def assert_like_single_run(merged: Path, single: Path) -> None:
    """Same ids, files, lines and statuses in the same order; every embedded row cosine >= 0.9999."""
    got, want = pq.read_table(merged.with_name(merged.stem + ".ids.parquet")), \
        pq.read_table(single.with_name(single.stem + ".ids.parquet"))
    assert got.schema == want.schema and got.to_pydict() == want.to_pydict()
    a, b = np.load(merged), np.load(single)
    assert a.shape == b.shape and a.dtype == b.dtype
    ok = np.array([s == "ok" for s in want.column("status").to_pylist()])
    assert (a[~ok] == 0).all()
    assert cosine_rows(a[ok], b[ok]).min() >= 0.9999


def test_merge_equals_a_single_run(job: dict, cache_dir: Path) -> None:
    merged = job["base"] / "all.npy"
    r = run_cli("merge", job["out"], "--output", merged, cache_dir=cache_dir)
    assert r.returncode == 0, r.stderr
    assert_like_single_run(merged, job["single"])
    manifest = json.loads((job["out"] / "manifest.json").read_text())
    rows = [s["rows"] for s in manifest["shards"]]
    assert [s["row_offset"] for s in manifest["shards"]] == [0, *np.cumsum(rows)[:-1]]
    assert manifest["rows"] == 6000
    # The merged index numbers vectors by global row and reaches the recall target.
    from ignite.index import store

    info = store.read_info(job["idx"])
    assert info["recall"]["recall_at_10"] >= 0.95 and info["count"] == 6000 - 4  # 4 bad records
    vectors = np.load(merged)
    rows = np.array([0, 1000, 2500, 4100, 5999])
    _, ids = store.search(job["idx"], vectors[rows], 1, nprobe=64)  # every list: exact
    assert ids.ravel().tolist() == rows.tolist()
    # Merged again with the inverted lists on disk: the same global ids.
    r = run_cli("merge", job["out"], "--on-disk", cache_dir=cache_dir)
    assert r.returncode == 0 and store.read_info(job["idx"])["merged"]["on_disk"], r.stderr
    _, ids = store.search(job["idx"], vectors[rows], 1, nprobe=64)
    assert ids.ravel().tolist() == rows.tolist()
    # .parquet: the same rows as one run's .parquet would hold.
    table = pq.read_table(_merge_parquet(job, cache_dir))
    single_ids = pq.read_table(job["single"].with_name("single.ids.parquet")).column("id")
    assert table.column("id").to_pylist() == single_ids.to_pylist()


def _merge_parquet(job: dict, cache_dir: Path) -> Path:
    path = job["base"] / "all.parquet"
    r = run_cli("merge", job["out"], "--output", path, cache_dir=cache_dir)
    assert r.returncode == 0, r.stderr
    return path


def test_finished_shard_runs_again_as_a_no_op(job: dict, cache_dir: Path) -> None:
    before = (job["out"] / "shard-00001-of-00004" / "part-00000.npy").stat().st_mtime_ns
    r = run_cli("embed", "--input", *job["corpus"], "--output", job["out"], "--shard", "1/4", "--index", job["idx"],
                *job["common"], cache_dir=cache_dir)
    assert r.returncode == 0 and "already complete" in r.stderr
    assert (job["out"] / "shard-00001-of-00004" / "part-00000.npy").stat().st_mtime_ns == before


def test_merge_refuses_missing_unfinished_and_foreign_shards(job: dict, cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(job["out"], out)
    record = out / "shard-00002-of-00004.json"
    saved = record.read_bytes()
    record.unlink()
    r = run_cli("merge", out, cache_dir=cache_dir)
    assert r.returncode == 2 and "shard shard-00002-of-00004 is unfinished" in r.stderr, r.stderr
    shutil.rmtree(out / "shard-00002-of-00004")
    r = run_cli("merge", out, cache_dir=cache_dir)
    assert r.returncode == 2 and "shard shard-00002-of-00004 is missing" in r.stderr and "--shard 2/4" in r.stderr
    # A shard of the same inputs but other options (float16) is from another run.
    r = run_cli("embed", "--input", *job["corpus"], "--output", out, "--shard", "2/4", *job["common"],
                "--output-dtype", "float16", cache_dir=cache_dir)
    assert r.returncode == 0, r.stderr
    r = run_cli("merge", out, cache_dir=cache_dir)
    assert r.returncode == 2 and "shard shard-00002-of-00004 is from another run: its options" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    record.write_bytes(saved)
    r = run_cli("embed", "--input", *job["corpus"][:2], "--output", out, "--shard", "2/4", *job["common"],
                cache_dir=cache_dir)
    assert r.returncode == 2 and "finished shard of another job" in r.stderr


def test_usage_errors_and_plan_command(job: dict, cache_dir: Path) -> None:
    r = run_cli("embed", "--input", *job["corpus"], "--output", job["base"] / "x.npy", "--shard", "0/2",
                *job["common"], cache_dir=cache_dir)
    assert r.returncode == 2 and "--shard writes a folder per shard" in r.stderr
    r = run_cli("embed", "--input", *job["corpus"], "--output", job["base"] / "y", "--shard", "auto",
                *job["common"], cache_dir=cache_dir, env={"JOB_COMPLETION_INDEX": "0"})
    assert r.returncode == 2 and "needs --shards N" in r.stderr
    r = run_cli("plan", "--input", *job["corpus"], "--shards", "4")
    assert r.returncode == 0 and r.stdout.count("shard-0000") == 4 and "a.jsonl lines 1-" in r.stdout


def test_two_runs_of_one_shard_cannot_both_write(job: dict, cache_dir: Path, tmp_path: Path) -> None:
    """A pod started twice, a requeued task beside its first copy: started at once, one writes and
    the other refuses naming it (or waits, with --wait), while another shard of the job runs freely."""
    out = tmp_path / "out"

    def args(shard: str) -> list:
        return ["embed", "--input", *job["corpus"], "--output", out, "--shard", shard, "--resume", *job["common"]]

    out.mkdir()  # else the two would race to create it
    logs = [tmp_path / f"run{i}.log" for i in range(3)]
    procs = [start_cli(args(shard), cache_dir, log) for shard, log in zip(("3/4", "3/4", "0/4"), logs)]
    codes = [p.wait(timeout=300) for p in procs]
    assert sorted(codes[:2]) == [0, 2] and codes[2] == 0, (codes, [log.read_text() for log in logs])
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    assert f"shard-00003-of-00004 is being written by pid {procs[winner].pid} on " in logs[loser].read_text()
    waited = run_cli(*args("3/4"), "--wait", cache_dir=cache_dir)
    assert waited.returncode == 0 and "already complete" in waited.stderr


def test_a_shard_with_nothing_to_embed_is_complete_at_once(job: dict, cache_dir: Path, tmp_path: Path) -> None:
    """More shards than a tiny input can be cut into: the empty ones record 0 rows, load no model."""
    tiny = tmp_path / "three.jsonl"
    tiny.write_text("".join(json.dumps({"id": f"t{i}", "text": f"line {i}"}) + "\n" for i in range(3)))
    r = run_cli("embed", "--input", tiny, "--output", tmp_path / "out", "--shard", "1/5", *job["common"],
                cache_dir=cache_dir)
    assert r.returncode == 0 and "no input" in r.stderr and "ignite: model" not in r.stderr, r.stderr
    assert json.loads((tmp_path / "out" / "shard-00001-of-00005.json").read_text())["rows"] == 0
