"""Output formats and model options, through the real CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import cosine_rows, run_cli

TEXTS = [f"Record number {i} talks about {topic}." for i, topic in
         enumerate(["rivers", "compilers", "bread", "tides", "prime numbers", "violins", "glaciers"] * 3)]


@pytest.fixture(scope="module")
def small_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    return path


@pytest.fixture(scope="module")
def reference(small_input: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    out = tmp_path_factory.mktemp("ref") / "ref.npy"
    result = run_cli("embed", "--input", small_input, "--output", out, "--dtype", "fp32", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    return np.load(out)


def test_parquet_output(tmp_path: Path, cache_dir: Path, small_input: Path, reference: np.ndarray) -> None:
    out = tmp_path / "emb.parquet"
    result = run_cli("embed", "--input", small_input, "--output", out, "--dtype", "fp32", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.column_names[:2] == ["id", "embedding"]
    emb_type = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(emb_type) and emb_type.list_size == 384
    assert emb_type.value_type == pa.float32()
    emb = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(-1, 384)
    np.testing.assert_allclose(emb, reference, atol=1e-6)
    assert table.column("id").to_pylist() == list(range(len(TEXTS)))


def test_shard_folder_float16(tmp_path: Path, cache_dir: Path, small_input: Path, reference: np.ndarray) -> None:
    out = tmp_path / "shards"
    result = run_cli("embed", "--input", small_input, "--output", out, "--shard-rows", "8", "--output-dtype",
                     "float16", "--dtype", "fp32", "--window-records", "5", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"part-0000{i}.{ext}" for i in range(3) for ext in ("npy", "parquet")]
    parts = [np.load(out / f"part-0000{i}.npy") for i in range(3)]
    assert [p.shape[0] for p in parts] == [8, 8, 5] and parts[0].dtype == np.float16
    np.testing.assert_allclose(np.concatenate(parts).astype(np.float32), reference, atol=2e-3)
    rows = [r for i in range(3) for r in pq.read_table(out / f"part-0000{i}.parquet").column("row").to_pylist()]
    assert rows == list(range(len(TEXTS)))


def test_dim_truncates_and_renormalises(tmp_path: Path, cache_dir: Path, small_input: Path,
                                        reference: np.ndarray) -> None:
    out = tmp_path / "d.npy"
    result = run_cli("embed", "--input", small_input, "--output", out, "--dim", "64", "--dtype", "fp32",
                     cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    emb = np.load(out)
    assert emb.shape == (len(TEXTS), 64)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert cosine_rows(emb, reference[:, :64]).min() > 0.99999


def test_prefix_and_no_normalize(tmp_path: Path, cache_dir: Path, small_input: Path, st_model) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "p.npy"
    result = run_cli("embed", "--input", small_input, "--output", out, "--prefix", "query: ", "--no-normalize",
                     "--dtype", "fp32", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    emb = np.load(out)
    assert abs(float(np.linalg.norm(emb[0])) - 1.0) > 1e-3  # really not normalised
    ref = st_model.encode(["query: " + t for t in TEXTS], convert_to_numpy=True)
    assert cosine_rows(emb, ref).min() >= 0.9999


def test_export_is_cached(tmp_path: Path, cache_dir: Path, small_input: Path, reference: np.ndarray) -> None:
    """The session cache already holds the export: a run must not export again."""
    result = run_cli("embed", "--input", small_input, "--output", tmp_path / "c.npy", "--dtype", "fp32",
                     "--backend", "onnxruntime", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    assert "exporting" not in result.stderr
