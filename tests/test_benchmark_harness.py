"""The benchmark harness runs end to end on a few records, so it does not rot."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, shared_file


def test_benchmark_json_shape(tmp_path: Path, cache_dir: Path) -> None:
    pytest.importorskip("matplotlib", reason="benchmark plots need matplotlib (pip install '.[bench]')")
    src = shared_file("passages.jsonl.zst")
    out = tmp_path / "res"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "benchmark.py"), "--input", str(src), "--limit", "200",
         "--systems", "ignite,sentence-transformers,tei", "--ignite-runs", "auto:fp32", "--st-runs", "fp32:64",
         "--repeat", "2", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "results.json").read_text())
    rows = {r["system"]: r for r in data["rows"]}
    assert set(rows) == {"ignite", "sentence-transformers", "tei"}
    for name in ("ignite", "sentence-transformers"):
        row = rows[name]
        for key in ("system", "backend", "texts_per_s", "tokens_per_s", "peak_rss_mb", "min_cosine", "settings"):
            assert key in row, (name, key)
        assert row["texts_per_s"] > 0 and row["min_cosine"] > 0.9999
        assert len(row["runs_s"]) == 2 and round(row["seconds"], 3) == min(row["runs_s"])  # the best of 2 rounds
    assert rows["tei"]["available"] is False and rows["tei"]["reason"]
    # The matmul ceiling is the fastest library's, and says which.
    assert set(data["machine"]["matmul_peak_by"].values()) <= {"torch", "numpy", "openvino"}
    assert min(data["machine"]["matmul_peak_flops"].values()) > 0
    assert (out / "results.md").read_text().count("| ignite |") == 1
    assert (out / "results.png").stat().st_size > 1000


def test_benchmark_fastembed_row(tmp_path: Path) -> None:
    """fastembed runs offline from a local ONNX export of the same weights; its rows match ST."""
    pytest.importorskip("fastembed", reason="fastembed not installed (pip install '.[bench]')")
    pytest.importorskip("matplotlib", reason="benchmark plots need matplotlib (pip install '.[bench]')")
    out = tmp_path / "res"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "benchmark.py"), "--input", str(shared_file("passages.jsonl.zst")),
         "--limit", "50", "--systems", "fastembed", "--fastembed-batches", "16", "--out", str(out)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["system"] == "fastembed" and row["texts_per_s"] > 0 and row["min_cosine"] > 0.9999


def test_pipeline_cpu_cost_runs(tmp_path: Path) -> None:
    """The pipeline cost benchmark's three paths, spinners and JSON, on a generated corpus."""
    pytest.importorskip("matplotlib", reason="benchmark plots need matplotlib (pip install '.[bench]')")
    zstandard = pytest.importorskip("zstandard")
    src = tmp_path / "in.jsonl.zst"
    lines = (json.dumps({"id": f"r{i}", "text": f"record {i} of a small generated corpus"}) for i in range(300))
    src.write_bytes(zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode()))
    out = tmp_path / "cost.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "pipeline_cpu_cost.py"), "--input", str(src), "--limit", "500",
         "--repeat", "1", "--window-records", "64", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["records"] == 500  # the corpus repeats past its end
    for path in ("before", "after", "native worker"):
        assert data["results"][path]["records"] == 500
        assert set(data["spinner"][path]) == {"thread", "process"}
    assert data["results"]["native worker"]["worker_python"] < data["results"]["after"]["worker"]
    assert data["core_scaling"] is None or data["core_scaling"]["ratio_median"] > 0
    assert data["core_scaling"] is None or data["core_scaling"]["steady_ratio_median"] > 0  # 8 windows: a steady part
    gil = data["gil_held_sampled"]  # sampled by py-spy where it runs; else the reason it did not
    assert "error" in gil or (gil["records"] == 500 and gil["total"] >= 0)
    assert out.with_suffix(".png").stat().st_size > 1000


def test_int8_recipes_runs(tmp_path: Path) -> None:
    """The int8 recipes benchmark on a generated corpus: every recipe gets a row with its speed and
    fidelity, and fp32 is its own reference."""
    pytest.importorskip("matplotlib", reason="benchmark plots need matplotlib (pip install '.[bench]')")
    pytest.importorskip("nncf", reason="int8 needs nncf (pip install '.[int8]')")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"passage {i}: " + "some words of a generated corpus " * (1 + i % 9)})
                           + "\n" for i in range(120)))
    out = tmp_path / "int8.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "int8_recipes.py"), "--input", str(src), "--calibration-records",
         "20", "--eval-records", "60", "--speed-records", "30", "--rounds", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    rows = {r["recipe"]: r for r in json.loads(out.read_text())["rows"]}
    assert len(rows) == 14 and all(r["texts_per_s"] > 0 for r in rows.values())
    assert rows["f32"]["min_cosine"] > 0.9999 and rows["f32"]["recall_at_10"] == 1.0
    assert out.with_suffix(".png").exists()


def test_rounds_alternate_the_order() -> None:
    """Every other round runs the jobs in reverse, so no job always runs just before the same one;
    every row keeps its fastest run and all its times."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import benchmark

    order: list[str] = []
    times = {"a": iter([3.0, 1.0, 2.0]), "b": iter([5.0, 6.0, 4.0]), "c": iter([7.0, 8.0, 9.0])}

    def job(name: str):  # type: ignore[no-untyped-def]
        return lambda: order.append(name) or {"name": name, "seconds": next(times[name])}

    rows = benchmark.best_of_rounds([(n, job(n)) for n in "abc"], repeat=3)
    assert order == list("abc" "cba" "abc")
    assert [(r["name"], r["seconds"], r["runs_s"]) for r in rows] == [
        ("a", 1.0, [3.0, 1.0, 2.0]), ("b", 4.0, [5.0, 6.0, 4.0]), ("c", 7.0, [7.0, 8.0, 9.0])]
