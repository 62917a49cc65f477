"""int8 done properly: static quantization of the exported graph with OpenVINO NNCF, calibrated on
the user's own records (SmoothQuant and bias correction, as NNCF's transformer recipe keeps
softmax, layer norm and the like in higher precision), once per model, options and calibration
sample, cached. Every quantized model comes with its fidelity to fp32, measured on held-apart
records: min and mean cosine, and recall@10 of an fp32 exact index queried with int8 vectors
against the same queries in fp32."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ignite.config import ModelOptions
from ignite.errors import UsageError
from ignite.models.export import export_key, export_onnx, locked
from ignite.models.spec import ModelSpec

log = logging.getLogger(__name__)

QUANTIZE_FORMAT = 1  # bump when the recipe changes
CALIBRATION_RECORDS = 300  # NNCF's default subset size
HELD_APART_RECORDS = 500
MEAN_COSINE_GOAL, RECALL_GOAL = 0.99, 0.97  # below these the run warns that int8 is not the same model

Batch = tuple[np.ndarray, np.ndarray]  # padded int32 ids and mask


@dataclass(frozen=True)
class Fidelity:
    records: int  # held-apart records it was measured on (distinct texts, none used to calibrate)
    min_cosine: float
    mean_cosine: float
    recall_at_10: float
    calibration_records: int

    def describe(self) -> str:
        return (f"cosine to fp32 min {self.min_cosine:.4f}, mean {self.mean_cosine:.4f}; recall@10 "
                f"{self.recall_at_10:.3f} against fp32, on {self.records} held-apart records (calibrated on "
                f"{self.calibration_records} of yours)")

    @property
    def faithful(self) -> bool:
        return self.mean_cosine >= MEAN_COSINE_GOAL and self.recall_at_10 >= RECALL_GOAL


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(norms, 1e-12)


def recall_at_10(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> float:
    """Mean share of each query's true top k (an exact inner-product index of the reference
    vectors, queried with the reference vector) that the candidate vector of the same query finds
    in its top k. A hit tied with the k-th true score counts, so duplicates cannot lower it."""
    ref = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    cand = candidate / np.maximum(np.linalg.norm(candidate, axis=1, keepdims=True), 1e-12)
    k = min(k, len(ref))
    true_scores = ref @ ref.T
    found = np.argpartition(-(cand @ ref.T), k - 1, axis=1)[:, :k]
    kth = -np.partition(-true_scores, k - 1, axis=1)[:, k - 1]
    hits = np.take_along_axis(true_scores, found, axis=1) >= kth[:, None] - 1e-6
    return float(hits.sum(axis=1).mean() / k)


def _digest(batches: Sequence[Batch]) -> str:
    h = hashlib.sha256()
    for ids, mask in batches:
        h.update(np.ascontiguousarray(ids).tobytes())
        h.update(np.ascontiguousarray(mask).tobytes())
    return h.hexdigest()


def quantized_model(spec: ModelSpec, options: ModelOptions, cache_dir: Path, calibration: Sequence[Batch],
                    held_apart: Sequence[Batch], threads: int) -> tuple[Path, Fidelity]:
    """The OpenVINO IR (model.xml) of the int8 model and its fidelity, quantizing first if needed."""
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise UsageError(f"--dtype int8 needs openvino and nncf ({exc}); pip install nncf") from None
    if not calibration:
        raise UsageError("--dtype int8 is calibrated on your records, and the first input file has none")
    onnx_path = export_onnx(spec, options, cache_dir)
    payload = {"format": QUANTIZE_FORMAT, "graph": export_key(spec, options), "nncf": nncf.__version__,
               "openvino": ov.get_version(), "calibration": _digest(calibration), "held_apart": _digest(held_apart)}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
    final = cache_dir / "int8" / key
    xml, report = final / "model.xml", final / "fidelity.json"
    if not report.is_file():
        with locked(cache_dir / "int8" / f"{key}.lock"):
            if not report.is_file():
                _quantize(onnx_path, calibration, held_apart, threads, final, payload)
    return xml, Fidelity(**json.loads(report.read_text()))


def _quantize(onnx_path: Path, calibration: Sequence[Batch], held_apart: Sequence[Batch], threads: int,
              final: Path, payload: dict) -> None:
    import nncf
    import openvino as ov

    rows = sum(len(ids) for ids, _ in calibration)
    log.info("quantizing %s to int8 with NNCF on %d of your records (once; cached under %s)", onnx_path, rows, final)
    core = ov.Core()
    model = core.read_model(str(onnx_path))
    dataset = nncf.Dataset([{"input_ids": ids, "attention_mask": mask} for ids, mask in calibration])
    quantized = nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER,
                              preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration))
    # Measured on records the calibration never saw (the calibration records when there are none).
    evaluate = held_apart or calibration
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    outputs = []
    for graph in (model, quantized):
        compiled = core.compile_model(graph, "CPU", config)
        request = compiled.create_infer_request()
        outputs.append(np.concatenate([np.array(request.infer({"input_ids": i, "attention_mask": m})[0],
                                                np.float32) for i, m in evaluate]))
    reference, int8 = outputs
    cos = cosines(int8, reference)
    fidelity = Fidelity(records=len(reference), min_cosine=round(float(cos.min()), 6),
                        mean_cosine=round(float(cos.mean()), 6), recall_at_10=round(recall_at_10(reference, int8), 4),
                        calibration_records=rows)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        ov.save_model(quantized, str(tmp / "model.xml"), compress_to_fp16=False)
        (tmp / "meta.json").write_text(json.dumps(payload, indent=2))
        (tmp / "fidelity.json").write_text(json.dumps(asdict(fidelity), indent=2))
        if final.exists():  # an earlier attempt died before its report: replaced whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
