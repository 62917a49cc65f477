"""--dtype int8: NNCF static quantization on OpenVINO, calibrated on the input's records, its
fidelity to fp32 measured on held-apart records and said every run; cached; refused elsewhere."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import cosine_rows, run_cli

pytest.importorskip("nncf", reason="nncf not installed (pip install nncf)")


def test_recall_counts_ties_and_misses() -> None:
    from ignite.models.quantize import recall_at_10

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((200, 16)).astype(np.float32)
    assert recall_at_10(ref, ref) == 1.0
    # Duplicated rows tie: any of them is a hit, whatever order the search returns them in.
    dup = np.concatenate([ref, ref[:50]])
    assert recall_at_10(dup, dup[::-1].copy()[::-1]) == 1.0
    assert recall_at_10(ref, ref + 1e-4 * rng.standard_normal(ref.shape).astype(np.float32)) == 1.0
    assert recall_at_10(ref, rng.standard_normal(ref.shape).astype(np.float32)) < 0.2
    # More records in the index: exact queries still find their own top 10; noisy ones find less.
    more = rng.standard_normal((2000, 16)).astype(np.float32)
    assert recall_at_10(ref, ref, more=more) == 1.0
    noisy = ref + 0.3 * rng.standard_normal(ref.shape).astype(np.float32)
    assert recall_at_10(ref, noisy, more=more) < recall_at_10(ref, noisy)


def _fidelity(rest: str, seconds: float, recall: float):  # type: ignore[no-untyped-def]
    from ignite.models.quantize import Fidelity

    return Fidelity(records=500, min_cosine=0.99, mean_cosine=0.999, recall_at_10=recall, calibration_records=300,
                    kept=6, rest=rest, seconds=seconds)


def test_the_kept_layers_run_in_the_fastest_faithful_precision() -> None:
    from ignite.models.quantize import choose

    f32, bf16 = _fidelity("f32", 1.5, 0.975), _fidelity("bf16", 1.1, 0.972)
    assert choose([f32, bf16]) is bf16
    slow_bf16 = _fidelity("bf16", 1.9, 0.972)  # bf16 without AMX can be slower than f32: measured, not assumed
    assert choose([f32, slow_bf16]) is f32
    unfaithful_bf16 = _fidelity("bf16", 1.1, 0.96)
    assert choose([f32, unfaithful_bf16]) is f32
    assert choose([_fidelity("f32", 1.5, 0.95), unfaithful_bf16]).rest == "bf16"  # none faithful: the closest
    # ... and of the closest within the recall's noise, the fastest.
    assert choose([_fidelity("f32", 1.5, 0.968), _fidelity("bf16", 1.1, 0.966)]).rest == "bf16"
    assert choose([_fidelity("f32", 1.1, 0.968), _fidelity("bf16", 1.5, 0.966)]).rest == "f32"


def test_the_sensitive_layers_are_the_feed_forward_down_projections(tmp_path: Path, model_dir: Path) -> None:
    import openvino as ov
    from tiny_model import make_tiny_model

    from ignite.config import ModelOptions
    from ignite.models.export import export_onnx
    from ignite.models.quantize import sensitive_layers
    from ignite.models.spec import load_spec

    model = make_tiny_model(tmp_path / "tiny", model_dir, hidden=64, layers=3)
    spec = load_spec(Path(model), "tiny")
    onnx = export_onnx(spec, ModelOptions("mean", True, 128, "", None), tmp_path / "cache")
    graph = ov.Core().read_model(str(onnx))
    names = sensitive_layers(graph)
    assert len(names) == 3 and all(f"layer.{i}/output/dense" in n for i, n in enumerate(names)), names
    matmuls = [op for op in graph.get_ordered_ops() if op.get_type_name() == "MatMul"]
    assert len(matmuls) == 3 * 8  # q, k, v, two attention products, attention output, two feed-forward


def test_int8_run_says_its_fidelity_and_is_cached(tmp_path: Path, cache_dir: Path, model_dir: Path) -> None:
    from tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny", model_dir, hidden=64, layers=2)
    rng = np.random.default_rng(1)
    words = [w for w in json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"] if w.isalpha()]
    texts = [" ".join(rng.choice(words, rng.integers(5, 60))) for _ in range(900)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    args = ["embed", "--input", src, "--model", model, "--dtype", "int8", "--threads", "1"]
    first = run_cli(*args, "--output", tmp_path / "a.npy", cache_dir=cache_dir)
    assert first.returncode == 0, first.stderr
    assert "quantizing" in first.stderr and "openvino cpu int8" in first.stderr
    # Both recipes measured, in each precision this CPU runs, and the run says the one chosen.
    from ignite.models.quantize import Fidelity, choose

    folder = Path(re.search(r"quantizing .* cached under (\S+)\)", first.stderr).group(1))
    measured = [Fidelity(**f) for f in json.loads((folder / "fidelity.json").read_text())]
    assert {f.recipe for f in measured} == {"static", "dynamic"} and (folder / "static.xml").is_file()
    for f in measured:
        assert (f.records, f.index_records) == (500, 600) and f.mean_cosine > 0.9  # 900 records: 300 calibrate
        # static: calibrated on 300 records, one feed-forward down projection a layer kept
        assert (f.calibration_records, f.kept) == ((300, 2) if f.recipe == "static" else (0, 0))
    chosen = choose(measured)
    said = f"int8 ({chosen.name}): {chosen.describe()}"
    assert said in first.stderr, first.stderr
    mean = chosen.mean_cosine
    # The figures are the run's own: recompute the cosine of what it wrote against fp32.
    fp32 = run_cli("embed", "--input", src, "--model", model, "--backend", "openvino", "--dtype", "fp32",
                   "--threads", "1", "--output", tmp_path / "f.npy", cache_dir=cache_dir)
    assert fp32.returncode == 0, fp32.stderr
    cos = cosine_rows(np.load(tmp_path / "a.npy"), np.load(tmp_path / "f.npy"))
    assert cos.min() > 0.9 and abs(float(cos[300:800].mean()) - mean) < 5e-3
    second = run_cli(*args, "--output", tmp_path / "b.npy", cache_dir=cache_dir)
    assert second.returncode == 0, second.stderr
    assert "quantizing" not in second.stderr and said in second.stderr  # cached, and said again
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    # int8 pads widths to 8 (fewer shapes for OpenVINO to build kernels for); the others do not.
    from ignite.backends.openvino import INT8_PAD_MULTIPLE, OpenVinoRunner

    runner = OpenVinoRunner(str(folder / "dynamic.xml"), 1, "int8", dynamic_group=64)
    assert runner.capabilities.pad_multiple == INT8_PAD_MULTIPLE == 8 and runner.dim == 64
    onnx = next((cache_dir / "onnx").glob("*/model.onnx"))
    assert OpenVinoRunner(str(onnx), 1, "fp32").capabilities.pad_multiple == 1


def test_calibration_batches_pad_as_the_run_pads() -> None:
    from ignite.backends.autotune import calibration_batches

    lengths = np.array([3, 9, 17, 5, 12, 30, 1, 8])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ids = np.arange(1, offsets[-1] + 1, dtype=np.int32)
    for multiple in (1, 8):
        batches = calibration_batches(ids, offsets, 0, 64, count=None, pad_multiple=multiple)
        assert all(b[0].shape[1] % multiple == 0 for b in batches)
        assert sorted(int(n) for b in batches for n in b[1].sum(1)) == sorted(lengths.tolist())


def test_int8_refused_where_it_does_not_run(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a"}\n')
    r = run_cli("embed", "--input", src, "--output", tmp_path / "o.npy", "--dtype", "int8", "--backend",
                "onnxruntime", cache_dir=cache_dir)
    assert r.returncode == 2 and "--dtype int8 runs on --backend openvino" in r.stderr and "Traceback" not in r.stderr
