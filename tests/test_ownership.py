"""One writer per output, and no success without proof, through the real CLI: concurrent runs on
one output (whatever mix of --resume and --overwrite) leave exactly one writing; a SIGKILLed
holder leaves no stale lock; a finished file that does not hold the committed rows fails the
run; outputs and inputs that are not what they seem are refused in one line; an input that
changes under a run is caught."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_command, run_cli
from ignite.errors import UsageError
from ignite.io.lock import LOCK_SUFFIX, OutputBusy, OutputLock, OutputLocks
from resumekit import (  # noqa: F401 - shared fixtures
    FAST,
    assert_same_npy_outputs,
    corpus,
    embed_args,
    manifest,
    reference,
    start_cli,
    tiny_model,
    wait_for_pipeline,
)


def _one_line_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ignite: error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def _wait_for_commit(out: Path, proc: subprocess.Popen, timeout: float = 120) -> dict:
    """The first commit with rows in it; fails if the run ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = manifest(out)
        if state and state["rows"] > 0:
            return state
        assert proc.poll() is None, "the run ended before its first commit"
        time.sleep(0.005)
    raise TimeoutError(f"no commit of {out} in {timeout}s")


def _one_file_run(tmp_path: Path, model: Path, records: int) -> tuple[Path, Path, list]:
    """One JSONL input of `records` records, its output, and the arguments of a run (small windows,
    a commit each: the first commit comes while the input is still being read)."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": f"record {i} " * 10}) + "\n" for i in range(records)))
    out = tmp_path / "emb.npy"
    return src, out, ["embed", "--input", src, "--output", out, "--model", model, "--window-records", "256", "--commit-interval", "0",
                      *FAST]


def test_four_runs_at_once_one_writes(tmp_path: Path, corpus: list[Path], tiny_model: Path, cache_dir: Path,
                                      reference: tuple[Path, float]) -> None:
    """Four runs of the same command at once, with --resume, --overwrite and neither: exactly one
    writes and finishes; the other three exit 2 while it still runs, naming it; the output equals
    an uninterrupted run."""
    out = tmp_path / "emb.npy"
    extras = [["--resume"], ["--overwrite"], [], ["--resume"]]
    procs, logs = [], []
    for i, extra in enumerate(extras):
        logs.append(tmp_path / f"run{i}.log")
        procs.append(start_cli(embed_args(corpus, out, tiny_model, "--errors", tmp_path / "errors.jsonl", *extra),
                               cache_dir, logs[-1]))
    ended: dict[int, float] = {}
    began = time.monotonic()
    while len(ended) < len(procs):
        for i, proc in enumerate(procs):
            if i not in ended and proc.poll() is not None:
                ended[i] = time.monotonic() - began
        time.sleep(0.005)
    codes = [p.returncode for p in procs]
    winners = [i for i, c in enumerate(codes) if c == 0]
    assert len(winners) == 1 and codes.count(2) == 3, (codes, [log.read_text() for log in logs])
    winner = winners[0]
    for i, log in enumerate(logs):
        if i == winner:
            continue
        text = log.read_text()
        assert f"is being written by pid {procs[winner].pid} on " in text, text
        assert ended[i] < ended[winner], (ended, "a refused run must not wait for the writer")
        print(f"run {i} ({' '.join(extras[i]) or 'no flag'}) refused after {ended[i]:.2f}s")
    assert_same_npy_outputs(out, reference[0])
    assert not list(tmp_path.glob(f"*{LOCK_SUFFIX}")), "the lock file is removed at the end"


def test_killed_holder_leaves_no_stale_lock(tmp_path: Path, corpus: list[Path], tiny_model: Path, cache_dir: Path,
                                            reference: tuple[Path, float]) -> None:
    """While a run holds the output, runs naming it through a symlinked folder or a relative path
    are refused; once it is SIGKILLed the next run takes the lock and --resume completes it."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    out = real / "emb.npy"
    log = tmp_path / "holder.log"
    holder = start_cli(embed_args(corpus, out, tiny_model, "--errors", real / "errors.jsonl"), cache_dir, log)
    assert wait_for_pipeline(holder, log), log.read_text()
    _wait_for_commit(out, holder)
    holder.send_signal(signal.SIGSTOP)  # mid-run, holding the lock, however fast the machine
    via_link = run_cli(*embed_args(corpus, tmp_path / "alias" / "emb.npy", tiny_model, "--resume"),
                       cache_dir=cache_dir)
    _one_line_error(via_link, 2, f"pid {holder.pid}")
    relative = subprocess.run(
        [*cli_command(), *map(str, embed_args(corpus, Path("emb.npy"), tiny_model, "--overwrite"))],
        capture_output=True, text=True, check=False, cwd=real, env=dict(os.environ, IGNITE_CACHE=str(cache_dir)), timeout=120)
    _one_line_error(relative, 2, f"pid {holder.pid}")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (real / f"emb.npy{LOCK_SUFFIX}").exists(), "a killed holder cannot remove its lock file"
    done = run_cli(*embed_args(corpus, tmp_path / "alias" / "emb.npy", tiny_model, "--resume", "--errors",
                               tmp_path / "alias" / "errors.jsonl"), cache_dir=cache_dir)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr and "verified: emb.npy" in done.stderr, done.stderr
    assert_same_npy_outputs(out, reference[0])


def test_wait_takes_the_lock_after_the_holder(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    """--wait waits for the holder instead of exiting 2, then finds the output complete."""
    _, out, args = _one_file_run(tmp_path, tiny_model, 3000)
    log = tmp_path / "holder.log"
    holder = start_cli(args, cache_dir, log)
    assert wait_for_pipeline(holder, log), log.read_text()
    # Held still while the waiter starts, however fast the run: it must find the lock taken.
    holder.send_signal(signal.SIGSTOP)
    waiter_log = tmp_path / "waiter.log"
    waiter = start_cli([*args, "--resume", "--wait"], cache_dir, waiter_log)
    deadline = time.monotonic() + 120
    while "waiting for it to end" not in waiter_log.read_text():
        assert waiter.poll() is None and time.monotonic() < deadline, waiter_log.read_text()
        time.sleep(0.01)
    holder.send_signal(signal.SIGCONT)
    assert holder.wait() == 0, log.read_text()
    assert waiter.wait(timeout=120) == 0, waiter_log.read_text()
    assert "already complete" in waiter_log.read_text(), waiter_log.read_text()
    assert np.load(out).shape == (3000, 32)


def test_a_finished_file_that_miscounts_fails_the_run(tmp_path: Path, corpus: list[Path], tiny_model: Path,
                                                      cache_dir: Path, reference: tuple[Path, float]) -> None:
    """The fault hook makes the .npy header claim one row fewer just before the rename: the run
    exits 1 (not 0), renames nothing, keeps its work folder, and --resume then finishes it right."""
    out = tmp_path / "emb.npy"
    args = embed_args(corpus, out, tiny_model, "--errors", tmp_path / "errors.jsonl")
    bad = run_cli(*args, cache_dir=cache_dir, env={"IGNITE_FAULT": "npy-header-rows"})
    _one_line_error(bad, 1, "emb.npy.partial: its header says 19,999 rows but the file holds 20,000.00", "--resume")
    assert not out.exists() and not (tmp_path / "emb.ids.parquet").exists()
    assert manifest(out)["done"], "every row is committed: only finishing remains"
    good = run_cli(*args, "--resume", cache_dir=cache_dir)
    assert good.returncode == 0 and "verified: emb.npy 20,000 x 32 float32 and emb.ids.parquet 20,000 rows" \
        in good.stderr, good.stderr
    assert_same_npy_outputs(out, reference[0])


def test_paths_that_are_not_what_they_seem(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"record {i}"}) + "\n" for i in range(5)))
    base = ["--model", tiny_model, *FAST]

    def embed(inputs: list, output: Path | str, *extra: str) -> subprocess.CompletedProcess:
        return run_cli("embed", "--input", *inputs, "--output", output, *base, *extra, cache_dir=cache_dir)

    (tmp_path / "dir.npy").mkdir()
    _one_line_error(embed([src], tmp_path / "dir.npy"), 2, "is a folder", ".npy extension names a file")
    _one_line_error(embed([src], tmp_path / "dir.npy", "--overwrite"), 2, "is a folder")
    assert (tmp_path / "dir.npy").is_dir()
    _one_line_error(embed([src], "/proc/x.npy"), 2, "/proc", "writable folder on a real filesystem")
    _one_line_error(embed(["/dev/null"], tmp_path / "a.npy"), 2, "/dev/null", "not a regular file",
                    "character device")
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    _one_line_error(embed([fifo], tmp_path / "a.npy"), 2, "pipe.jsonl", "a FIFO")
    fifo.unlink()
    # A folder output among files Ignite did not write: the inputs' own folder, say.
    for extra in ((), ("--overwrite",)):
        _one_line_error(embed([src], tmp_path, *extra), 2, "holds files Ignite did not write", "in.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npy", "in.jsonl"], "nothing written or deleted"
    plain = tmp_path / "plainfile"
    plain.write_text("not ours")
    _one_line_error(embed([src], plain), 2, "is a file", "folder of shards")
    table = tmp_path / "in.parquet"
    run_ok = embed([src], table)
    assert run_ok.returncode == 0, run_ok.stderr
    _one_line_error(embed([table], table, "--overwrite"), 2, "is also an input")
    assert table.stat().st_size > 0
    # --overwrite of a shard folder removes only the shards Ignite wrote (and so can redo it).
    shards = tmp_path / "shards"
    for extra in ((), ("--overwrite",)):
        result = embed([src], shards, "--shard-rows", "2", *extra)
        assert result.returncode == 0, result.stderr
        assert "verified: 3 shard(s)" in result.stderr, result.stderr
    assert sorted(p.name for p in shards.iterdir()) == [f"part-0000{i}.{e}" for i in range(3) for e in ("npy", "parquet")]


def test_input_appended_while_read(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    """An input that grows under a run: the run names the file and how it changed, exits 2 and
    calls nothing finished; --resume refuses the changed input; --overwrite redoes it."""
    src, out, args = _one_file_run(tmp_path, tiny_model, 20_000)
    log = tmp_path / "run.log"
    proc = start_cli(args, cache_dir, log)
    assert wait_for_pipeline(proc, log), log.read_text()
    _wait_for_commit(out, proc)
    proc.send_signal(signal.SIGSTOP)  # the append lands while the file is being read, deterministically
    with open(src, "a") as f:
        f.write("".join(json.dumps({"id": f"late{i}", "text": "appended"}) + "\n" for i in range(200)))
    proc.send_signal(signal.SIGCONT)
    assert proc.wait(timeout=300) == 2, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text and f"input {src} changed while it was read: it grew from" in text, text
    assert not out.exists() and manifest(out) is not None
    resumed = run_cli(*args, "--resume", cache_dir=cache_dir)
    _one_line_error(resumed, 2, f"input {src} changed since the run began")
    redo = run_cli(*args, "--overwrite", cache_dir=cache_dir)
    assert redo.returncode == 0 and np.load(out).shape == (20_200, 32), redo.stderr


def test_finished_output_is_stale_once_its_input_grows(tmp_path: Path, tiny_model: Path, cache_dir: Path) -> None:
    """--resume on a finished output whose input has since grown does not call it complete."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"record {i}"}) + "\n" for i in range(40)))
    out = tmp_path / "emb.parquet"
    args = ["embed", "--input", src, "--output", out, "--model", tiny_model, *FAST, "--resume"]
    assert run_cli(*args, cache_dir=cache_dir).returncode == 0
    with open(src, "a") as f:
        f.write("".join(json.dumps({"text": f"late {i}"}) + "\n" for i in range(200)))
    stale = run_cli(*args, cache_dir=cache_dir)
    _one_line_error(stale, 2, "is finished but does not match this run", "changed", "--overwrite")


def test_lock_in_process(tmp_path: Path) -> None:
    """The lock's own rules: one holder per process too, a stable path through symlinks, the file
    removed on release, and an uncreatable lock file reported in words."""
    out = tmp_path / "emb.npy"
    (tmp_path / "link").symlink_to(tmp_path)
    with OutputLocks([out, tmp_path / "link" / "emb.npy"]) as locks:
        locks.acquire()
        assert len(locks.locks) == 1, "the same output through a symlink is one lock"
        with pytest.raises(OutputBusy, match="already being written by this process"):
            OutputLock(out).acquire()
        holder = json.loads((tmp_path / f"emb.npy{LOCK_SUFFIX}").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] and holder["command"]
    assert not (tmp_path / f"emb.npy{LOCK_SUFFIX}").exists()
    with OutputLock(out) as again:  # free again
        again.acquire()
    with pytest.raises(UsageError, match="writable folder"):
        OutputLock(tmp_path / "missing" / "emb.npy").acquire()
