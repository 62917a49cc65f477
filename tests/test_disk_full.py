"""Write failures through the real CLI: a full disk (a small tmpfs; needs root, else skipped) or a
file size limit (RLIMIT_FSIZE, no root needed) mid-run or while finishing: exit 1 with one line
naming the file and the way on, the last commit intact, and --resume, once space is back,
finishes with the outputs of an uninterrupted run."""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import cli_command, run_cli
from resumekit import assert_same_npy_outputs, embed_args, manifest
from resumekit import corpus, reference, tiny_model  # noqa: F401 - shared fixtures
HEADER = 128


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _resize(disk: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


def _one_error_line(stderr: str, starts: str, ends: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("ignite: error:")]
    assert len(errors) == 1 and errors[0].startswith(starts) and errors[0].endswith(ends), stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == errors[0]


def test_disk_full_mid_run_then_resume(small_disk: Path, corpus: list[Path], tiny_model: Path, cache_dir: Path,
                                       reference: tuple[Path, float]) -> None:
    ref, _ = reference
    out, errors = small_disk / "emb.npy", small_disk / "errors.jsonl"
    args = embed_args(corpus, out, tiny_model, "--errors", errors)
    full = run_cli(*args, cache_dir=cache_dir)
    assert full.returncode == 1
    _one_error_line(full.stderr, "ignite: error: no space left on device writing ",
                    "; free space and rerun with --resume")
    state = manifest(out)
    assert state is not None and 0 < state["rows"] < 20_000 and not state["done"]
    work = small_disk / "emb.npy.ignite"
    assert (work / "emb.npy.partial").stat().st_size >= HEADER + state["rows"] * 32 * 4
    assert (work / "emb.npy.meta").stat().st_size >= state["meta_bytes"]
    assert not out.exists() and not (small_disk / "emb.ids.parquet").exists()
    # Still full: the same clear failure, nothing lost.
    again = run_cli(*args, "--resume", cache_dir=cache_dir)
    assert again.returncode == 1 and "no space left on device" in again.stderr
    assert manifest(out)["rows"] >= state["rows"]
    _resize(small_disk, "64m")
    resumed = run_cli(*args, "--resume", cache_dir=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_npy_outputs(out, ref)
    assert errors.read_bytes() == ref.with_name("errors.jsonl").read_bytes()
    assert sorted(p.name for p in small_disk.iterdir()) == ["emb.ids.parquet", "emb.npy", "emb.report.json",
                                                           "errors.jsonl"]


def test_disk_full_while_finishing_then_resume(small_disk: Path, corpus: list[Path], tiny_model: Path,
                                               cache_dir: Path, reference: tuple[Path, float]) -> None:
    """A .parquet output is built from the work folder at the end, needing as much space again:
    the run commits everything, fails finishing, and a resume only finishes."""
    ref, _ = reference
    _resize(small_disk, "4500k")  # the work folder (about 3.3 MB) fits; it and the parquet do not
    out = small_disk / "emb.parquet"
    args = embed_args(corpus, out, tiny_model)
    full = run_cli(*args, cache_dir=cache_dir)
    assert full.returncode == 1
    _one_error_line(full.stderr, f"ignite: error: no space left on device writing {out}",
                    "; free space and rerun with --resume")
    state = manifest(out)
    assert state is not None and state["rows"] == 20_000 and state["done"]
    assert not out.exists()
    _resize(small_disk, "64m")
    resumed = run_cli(*args, "--resume", cache_dir=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "embedded 0 records (resumed after 20,000)" in resumed.stderr
    table = pq.read_table(out)
    meta_ref = pq.read_table(ref.with_name("emb.ids.parquet"))
    assert table.column("id").to_pylist() == meta_ref.column("id").to_pylist()
    assert table.column("status").to_pylist() == meta_ref.column("status").to_pylist()
    emb = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(len(table), -1)
    np.testing.assert_allclose(emb, np.load(ref), atol=1e-5)
    assert sorted(p.name for p in small_disk.iterdir()) == ["emb.parquet", "emb.parquet.report.json"]


def _limit_file_size() -> None:
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing it.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))


def test_file_size_limit_then_resume(tmp_path: Path, corpus: list[Path], tiny_model: Path, cache_dir: Path,
                                     reference: tuple[Path, float]) -> None:
    """RLIMIT_FSIZE (no root needed): the embeddings file reaches 1 MB mid-run."""
    ref, _ = reference
    out = tmp_path / "emb.npy"
    args = [*cli_command(), *map(str, embed_args(corpus, out, tiny_model))]
    env = dict(os.environ, IGNITE_CACHE=str(cache_dir))
    limited = subprocess.run(args, capture_output=True, text=True, env=env, preexec_fn=_limit_file_size, timeout=300)
    assert limited.returncode == 1
    _one_error_line(limited.stderr, f"ignite: error: file too large writing {out}",
                    "raise the limit and rerun with --resume")
    state = manifest(out)
    assert state is not None and 0 < state["rows"] < 20_000
    resumed = run_cli(*embed_args(corpus, out, tiny_model), "--resume", cache_dir=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_npy_outputs(out, ref)
    shutil.rmtree(tmp_path, ignore_errors=True)
