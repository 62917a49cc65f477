"""int8 done properly: two recipes, both measured, the fastest faithful one kept.

(1) Static quantization of the exported graph with OpenVINO NNCF, calibrated on the user's own
records (SmoothQuant and bias correction, as NNCF's transformer recipe keeps softmax, layer norm
and the like in higher precision), once per model, options, calibration sample and CPU, cached. The
sensitive layers stay out of int8: the feed-forward down projections, whose inputs (the GELU's
outputs) have the widest, most lopsided range. They run in f32, or in bf16 where the CPU multiplies
it natively and that measures faster.
(2) int8 weights everywhere (NNCF weight compression, per channel), each FullyConnected's input
quantized per token in groups of DYNAMIC_GROUP values as it runs (OpenVINO's dynamic
quantization): no calibration, no layer kept, finer activation ranges than one static range a
tensor, and slower (on a Zen 5 EPYC 1.22x bf16 against static's 1.32x, recall@10 0.974 against
0.970). OpenVINO does not quantize dynamically in a graph that holds static quantizers, so the two
do not mix.

Every quantized model comes with its fidelity to fp32, measured on held-apart records: min and
mean cosine, and recall@10 of an fp32 exact index queried with int8 vectors against the same
queries in fp32."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ignite.config import ModelOptions
from ignite.errors import UsageError
from ignite.hardware import cpu_flags, cpu_model, openvino_has_native_bf16
from ignite.models.export import export_key, export_onnx, locked
from ignite.models.spec import ModelSpec

log = logging.getLogger(__name__)

QUANTIZE_FORMAT = 3  # bump when the recipes change (3: the dynamic recipe measured beside the static one)
CALIBRATION_RECORDS = 300  # NNCF's default subset size
HELD_APART_RECORDS = 500
# The held-apart records are queried against an exact fp32 index of this many (them and the next
# ones): recall@10 falls as an index grows (static recipe on a Zen 5: 0.971 over 500, 0.966 over
# 5,200), so the index is the size benchmarks/benchmark.py searches. Those extra records cost one
# fp32 pass, not one a recipe.
INDEX_RECORDS = 2000
DYNAMIC_GROUP = 64  # values a scale in dynamic quantization: 32 was no more faithful and 0.8x as fast
RECIPES = {"static": "NNCF static quantization", "dynamic": "NNCF int8 weights, OpenVINO dynamic activations"}
MEAN_COSINE_GOAL, RECALL_GOAL = 0.99, 0.97  # below these the run warns that int8 is not the same model
# Recall@10 of one recipe moves by about this much between samples of 500 held-apart records
# (0.967-0.974 over ten): a smaller gap between two candidates is not a difference.
RECALL_NOISE = 0.005

Batch = tuple[np.ndarray, np.ndarray]  # padded int32 ids and mask

# A MatMul whose input comes, through element-wise steps, from one of these is a feed-forward down
# projection. On all-MiniLM-L6-v2 (2,000 held-apart passages) keeping those 6 of 48 MatMuls out of
# int8 took recall@10 from 0.957 to 0.972 and the least cosine from 0.987 to 0.997.
_ACTIVATIONS = frozenset({"Erf", "Gelu", "Tanh", "Sigmoid", "Swish", "HSwish", "Mish"})
_ELEMENTWISE = frozenset({"Multiply", "Add", "Divide", "Subtract", "Convert"})


@dataclasses.dataclass(frozen=True)
class Fidelity:
    records: int  # held-apart records it was measured on (distinct texts, none used to calibrate)
    min_cosine: float
    mean_cosine: float
    recall_at_10: float
    calibration_records: int
    kept: int  # sensitive layers left out of int8
    rest: str  # the precision they (and all that NNCF left unquantized) run in: f32 or bf16
    seconds: float  # the held-apart records' pass, warm, in this precision
    recipe: str = "static"  # a key of RECIPES
    index_records: int = 0  # the exact fp32 index recall@10 searched (0: the held-apart records alone)

    def describe(self) -> str:
        said = (f"cosine to fp32 min {self.min_cosine:.4f}, mean {self.mean_cosine:.4f}; "
                f"recall@10 {self.recall_at_10:.3f} against fp32, on {self.records} held-apart records "
                f"(an exact index of {max(self.index_records, self.records):,})")
        if self.recipe == "dynamic":
            return (f"{said}; activations quantized per token in groups of {DYNAMIC_GROUP} as it runs, "
                    f"the rest in {self.rest}")
        return (f"{said}; calibrated on {self.calibration_records} of yours; {self.kept} sensitive layers kept "
                f"in {self.rest}")

    @property
    def name(self) -> str:
        return RECIPES[self.recipe]

    @property
    def dynamic_group(self) -> int | None:
        return dynamic_group(self.recipe)

    @property
    def faithful(self) -> bool:
        return self.mean_cosine >= MEAN_COSINE_GOAL and self.recall_at_10 >= RECALL_GOAL


def dynamic_group(recipe: str) -> int | None:
    """OpenVINO's DYNAMIC_QUANTIZATION_GROUP_SIZE for a recipe (None: not dynamic)."""
    return DYNAMIC_GROUP if recipe == "dynamic" else None


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(norms, 1e-12)


def recall_at_10(reference: np.ndarray, candidate: np.ndarray, k: int = 10, more: np.ndarray | None = None) -> float:
    """Mean share of each query's true top k (an exact inner-product index of the reference
    vectors and `more` reference vectors, queried with the reference vector) that the candidate
    vector of the same query finds in its top k. A hit tied with the k-th true score counts, so
    duplicates cannot lower it."""
    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    ref, cand = unit(reference), unit(candidate)
    index = ref if more is None or not len(more) else np.concatenate([ref, unit(more)])
    k = min(k, len(index))
    true_scores = ref @ index.T
    found = np.argpartition(-(cand @ index.T), k - 1, axis=1)[:, :k]
    kth = -np.partition(-true_scores, k - 1, axis=1)[:, k - 1]
    hits = np.take_along_axis(true_scores, found, axis=1) >= kth[:, None] - 1e-6
    return float(hits.sum(axis=1).mean() / k)


def sensitive_layers(model) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of the MatMuls of an OpenVINO model fed by an activation (the down projections)."""
    def after_activation(op) -> bool:  # type: ignore[no-untyped-def]
        frontier = [op.input_value(0).get_node()]
        for _ in range(4):  # GELU is x * 0.5 * (1 + erf(x / sqrt 2)): erf is 3 steps up
            if any(n.get_type_name() in _ACTIVATIONS for n in frontier):
                return True
            frontier = [v.get_node() for n in frontier if n.get_type_name() in _ELEMENTWISE for v in n.input_values()]
        return False

    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_type_name() == "MatMul" and after_activation(op)]


def choose(fidelities: Sequence[Fidelity]) -> Fidelity:
    """The fastest faithful recipe and precision; where none is faithful, the fastest of the
    closest (those within RECALL_NOISE of the best recall)."""
    faithful = [f for f in fidelities if f.faithful]
    if faithful:
        return min(faithful, key=lambda f: f.seconds)
    best = max(f.recall_at_10 for f in fidelities)
    return min((f for f in fidelities if f.recall_at_10 >= best - RECALL_NOISE), key=lambda f: f.seconds)


def _digest(batches: Sequence[Batch]) -> str:
    h = hashlib.sha256()
    for ids, mask in batches:
        h.update(np.ascontiguousarray(ids).tobytes())
        h.update(np.ascontiguousarray(mask).tobytes())
    return h.hexdigest()


def quantized_model(spec: ModelSpec, options: ModelOptions, cache_dir: Path, calibration: Sequence[Batch],
                    held_apart: Sequence[Batch], threads: int,
                    index_only: Sequence[Batch] = ()) -> tuple[Path, Fidelity]:
    """The OpenVINO IR of the int8 recipe chosen (static.xml or dynamic.xml) and its fidelity in
    the precision chosen for what stays out of int8, quantizing and measuring first if needed."""
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise UsageError(f"--dtype int8 needs openvino and nncf ({exc}); pip install nncf") from None
    if not calibration:
        raise UsageError("--dtype int8 is calibrated on your records, and the first input file has none")
    onnx_path = export_onnx(spec, options, cache_dir)
    payload = {"format": QUANTIZE_FORMAT, "graph": export_key(spec, options), "nncf": nncf.__version__,
               "openvino": ov.get_version(), "cpu": cpu_model(),
               "flags": sorted(cpu_flags()), "threads": threads, "calibration": _digest(calibration),
               "held_apart": _digest(held_apart), "index_only": _digest(index_only)}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
    final = cache_dir / "int8" / key
    report = final / "fidelity.json"
    if not report.is_file():
        with locked(cache_dir / "int8" / f"{key}.lock"):
            if not report.is_file():
                _quantize(onnx_path, calibration, held_apart, index_only, threads, final, payload)
    chosen = choose([Fidelity(**f) for f in json.loads(report.read_text())])
    return final / f"{chosen.recipe}.xml", chosen


def _quantize(onnx_path: Path, calibration: Sequence[Batch], held_apart: Sequence[Batch], index_only: Sequence[Batch],
              threads: int, final: Path, payload: dict) -> None:
    import nncf
    import openvino as ov

    rows = sum(len(ids) for ids, _ in calibration)
    log.info("quantizing %s to int8 with NNCF on %d of your records (once; cached under %s)", onnx_path, rows, final)
    core = ov.Core()
    model = core.read_model(str(onnx_path))
    dataset = nncf.Dataset([{"input_ids": ids, "attention_mask": mask} for ids, mask in calibration])
    kept = sensitive_layers(model)
    graphs = {"static": nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER,
                                      preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration),
                                      ignored_scope=nncf.IgnoredScope(names=kept)),
              "dynamic": nncf.compress_weights(model.clone(), mode=nncf.CompressWeightsMode.INT8_SYM)}
    # Measured on records the calibration never saw (the calibration records when there are none).
    evaluate = held_apart or calibration

    def embed(graph, precision: str, passes: int = 2, group: int | None = None,  # type: ignore[no-untyped-def]
              evaluate: Sequence[Batch] = evaluate) -> tuple[np.ndarray, float]:
        """The embeddings of `evaluate`, and the seconds of the last pass (the second is warm:
        OpenVINO prepares its kernels per shape on the first), batches run at once as the run runs them."""
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision,
                  "PERFORMANCE_HINT": "THROUGHPUT"}
        if group is not None:
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = group
        requests = ov.AsyncInferQueue(core.compile_model(graph, "CPU", config))
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(evaluate)
        requests.set_callback(lambda request, i: out.__setitem__(i, np.array(request.get_output_tensor(0).data,
                                                                            np.float32, copy=True)))
        seconds = 0.0
        for _ in range(passes):
            began = time.perf_counter()
            for i, (ids, mask) in enumerate(evaluate):
                requests.start_async({"input_ids": ids, "attention_mask": mask}, i)
            requests.wait_all()
            seconds = time.perf_counter() - began
        return np.concatenate(out), seconds

    reference, _ = embed(model, "f32", passes=1)
    more = embed(model, "f32", passes=1, evaluate=index_only)[0] if index_only else None
    indexed = len(reference) + (0 if more is None else len(more))
    fidelities = []
    for recipe, graph in graphs.items():
        for precision in ("f32", "bf16") if openvino_has_native_bf16(core) else ("f32",):
            static = recipe == "static"
            int8, seconds = embed(graph, precision, group=dynamic_group(recipe))
            cos = cosines(int8, reference)
            fidelities.append(Fidelity(records=len(reference), min_cosine=round(float(cos.min()), 6),
                                       mean_cosine=round(float(cos.mean()), 6),
                                       recall_at_10=round(recall_at_10(reference, int8, more=more), 4),
                                       calibration_records=rows if static else 0, kept=len(kept) if static else 0,
                                       rest=precision, seconds=round(seconds, 3), recipe=recipe,
                                       index_records=indexed))
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        for recipe, graph in graphs.items():
            ov.save_model(graph, str(tmp / f"{recipe}.xml"), compress_to_fp16=False)
        (tmp / "meta.json").write_text(json.dumps(payload, indent=2))
        (tmp / "fidelity.json").write_text(json.dumps([dataclasses.asdict(f) for f in fidelities], indent=2))
        if final.exists():  # an earlier attempt died before its report: replaced whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
