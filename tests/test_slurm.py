"""The SLURM example (examples/slurm/) on a real one-node cluster: index trained first, a 4-task
array, merge after, by job dependencies. One task is killed mid-run with `scancel --signal=KILL`
and requeued; the merged output equals a single-process run and the merged index's recall@10
against exact search is >= 0.95."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA, cli_command, read_jsonl_zst, run_cli
from resumekit import FAST, build_tiny_model, make_corpus
from slurmkit import Cluster, skip_unless_available
from test_shards import assert_like_single_run

RECORDS = 8000  # a CI-sized slice: ~2,000 per task


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    skip_unless_available()
    c = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _corpus(folder: Path) -> list[str]:
    """The first RECORDS passages of the shared corpus as one file (so the plan cuts it into line
    ranges) plus a small second file; generated records when ../shared is absent."""
    passages = SHARED_DATA / "passages.jsonl.zst"
    if not passages.is_file():
        return [str(p) for p in make_corpus(folder, RECORDS)]
    folder.mkdir()
    records = read_jsonl_zst(passages, RECORDS)
    big, small = folder / "passages.jsonl", folder / "tail.jsonl"
    big.write_text("".join(json.dumps(r) + "\n" for r in records[:-200]))
    small.write_text("".join(json.dumps(r) + "\n" for r in records[-200:]))
    return [str(big), str(small)]


def _wait(what: str, ready, cluster: Cluster, timeout: float = 150) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{cluster.logs()}")
        time.sleep(0.05)


def _committed_rows(work: Path) -> int:
    try:
        return json.loads((work / "manifest.json").read_text())["committed"]["rows"]
    except (OSError, ValueError, KeyError):
        return 0


def test_slurm_array_with_a_killed_and_requeued_task(cluster: Cluster, tmp_path: Path, cache_dir: Path) -> None:
    model = build_tiny_model(tmp_path.parent / "tiny-model")
    inputs = _corpus(tmp_path / "corpus")
    out, idx = tmp_path / "emb", tmp_path / "emb.index"
    model_args = f"--model {model} {' '.join(FAST)} --index-type ivf"
    # Every window commits, slowly: the kill below must land mid-run, however fast the pipeline is.
    embed_args = "--id-field id --window-records 128 --commit-interval 0"
    # The exports of the jobs: the CLI of this checkout, one shared model cache.
    path = os.pathsep.join(p for p in (str(REPO / "python"), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(cluster.env, INPUT=" ".join(inputs), OUT=str(out), IDX=str(idx), SHARDS="4", MERGED=str(out) + ".npy",
               MODEL_ARGS=model_args, EMBED_ARGS=embed_args, IGNITE=" ".join(cli_command()),
               IGNITE_CACHE=str(cache_dir), PYTHONPATH=path, IGNITE_FAULT="slow-commit")
    submitted = subprocess.run([str(REPO / "examples" / "slurm" / "submit.sh")], capture_output=True, text=True,
                               env=env, cwd=tmp_path, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    train, array, merge = submitted.stdout.split()
    victim = f"{array}_1"
    work = out / "shard-00001-of-00004.ignite"
    # Mid-run: task 1 has committed windows but not all of them.
    _wait("task 1 to commit its first windows", lambda: _committed_rows(work) > 0, cluster)
    # --batch: SIGKILL to the batch step itself (ignite, exec'd by embed.sbatch); without it, or
    # with --full, SLURM cancels the job, which sends SIGTERM first and lets ignite commit.
    cluster.run("scancel", "--signal=KILL", "--batch", victim)
    cluster.run("scontrol", "requeue", victim)  # it starts again once its credential expires (10 s here)
    killed_at = _committed_rows(work)
    # A requeued job (pending once the kill has completed) waits two minutes before it may start
    # again: let it start now.
    _wait("the merge job to end", lambda: cluster.state(merge) in ("COMPLETED", "FAILED", "CANCELLED"), cluster)
    assert cluster.state(merge) == "COMPLETED", cluster.logs() + "".join(
        p.read_text() for p in sorted(tmp_path.glob("ignite-*.log")))
    assert cluster.state(train) == "COMPLETED"
    assert "Restarts=1" in cluster.run("scontrol", "show", "job", victim)
    victim_log = "".join(p.read_text() for p in tmp_path.glob("ignite-embed-*_1.log"))
    assert "resuming" in victim_log and killed_at > 0 and "SIGTERM" not in victim_log, victim_log
    assert not work.exists()

    single = tmp_path / "single.npy"
    r = run_cli("embed", "--input", *inputs, "--output", single, "--model", model, *FAST, *embed_args.split(),
                cache_dir=cache_dir)
    assert r.returncode == 0, r.stderr
    assert_like_single_run(Path(str(out) + ".npy"), single)
    info = json.loads((idx / "index.json").read_text())
    assert info["merged"] and info["recall"]["recall_at_10"] >= 0.95, info["recall"]
