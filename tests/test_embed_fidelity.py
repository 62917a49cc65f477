"""Fidelity: the real CLI, file to file, against sentence-transformers' encode of the same texts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import cosine_rows, read_jsonl_zst, run_cli, shared_file
from ignite.hardware import cpu_has_native_bf16


@pytest.fixture(scope="module")
def st_reference(passages_2k, st_model) -> np.ndarray:  # type: ignore[no-untyped-def]
    _, records = passages_2k
    return st_model.encode([r["text"] for r in records], batch_size=64, convert_to_numpy=True)


@pytest.mark.parametrize("backend,dtype,floor", [
    ("onnxruntime", "fp32", 0.9999), ("openvino", "fp32", 0.9999), ("torch", "fp32", 0.9999),
    ("openvino", "bf16", 0.999), ("torch", "bf16", 0.999)])
def test_matches_sentence_transformers(tmp_path: Path, cache_dir: Path, passages_2k, st_reference,
                                       backend: str, dtype: str, floor: float) -> None:
    if (backend, dtype) == ("openvino", "bf16") and not cpu_has_native_bf16():
        pytest.skip("OpenVINO refuses bf16 on a CPU without native bf16 (AMX or AVX-512 BF16), as this one")
    path, records = passages_2k
    out = tmp_path / "emb.npy"
    result = run_cli("embed", "--input", path, "--output", out, "--id-field", "id", "--backend", backend,
                     "--dtype", dtype, cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    emb = np.load(out)
    assert emb.shape == (len(records), 384) and emb.dtype == np.float32
    cos = cosine_rows(emb, st_reference)
    assert cos.min() >= floor, f"min cosine {cos.min():.6f} at row {int(cos.argmin())}"
    ids = pq.read_table(out.with_name("emb.ids.parquet"))
    assert ids.column("id").to_pylist() == [r["id"] for r in records]
    assert ids.column("row").to_pylist() == list(range(len(records)))
    assert ids.column("line").to_pylist() == list(range(1, len(records) + 1))
    assert set(ids.column("status").to_pylist()) == {"ok"}
    assert "embedded 2,000 records" in result.stderr


def test_record_alone_equals_record_in_batch(tmp_path: Path, cache_dir: Path, passages_2k) -> None:
    """Padding and batch neighbours must not change a record's embedding (TEI's model test)."""
    path, records = passages_2k
    single = tmp_path / "one.jsonl"
    single.write_text(path.read_text().splitlines()[7] + "\n")
    out_one, out_all = tmp_path / "one.npy", tmp_path / "all.npy"
    for inp, out in ((single, out_one), (path, out_all)):
        result = run_cli("embed", "--input", inp, "--output", out, "--dtype", "fp32", cache_dir=cache_dir)
        assert result.returncode == 0, result.stderr
    assert cosine_rows(np.load(out_one), np.load(out_all)[7:8])[0] >= 0.99999


def test_multilingual_bf16_default(tmp_path: Path, cache_dir: Path, st_model) -> None:  # type: ignore[no-untyped-def]
    """The default CPU path (what --dtype auto measures fastest here) on German, French and Japanese
    paragraphs."""
    src = shared_file("multilingual.jsonl.zst")
    records = read_jsonl_zst(src)
    out = tmp_path / "ml.npy"
    result = run_cli("embed", "--input", src, "--output", out, "--id-field", "id", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    ref = st_model.encode([r["text"] for r in records], batch_size=64, convert_to_numpy=True)
    cos = cosine_rows(np.load(out), ref)
    assert len(cos) == len(records)
    assert cos.min() >= 0.999, f"min cosine {cos.min():.6f} at row {int(cos.argmin())}"
