#!/usr/bin/env python3
"""What the inline FAISS index costs: `ignite embed` on the same input with and without
`--index` (goal: the index adds < 5% of wall time), and index build rates per index type on the
vectors that run produced.

    python benchmarks/index_bench.py --input corpus.jsonl.zst --limit 20000
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ignite_cmd, machine, prepare_input, run_child  # noqa: E402

SUMMARY = re.compile(r"embedded ([\d,]+) records.* in ([\d.]+)s")
INDEX_LINE = re.compile(r"index (\S+): .* ([\d.]+)s spent on the index")


def build_rates(vectors: np.ndarray, kinds: list[str], folder: Path) -> list[dict]:
    from ignite.index.builder import IndexBuilder
    from ignite.index.plan import plan_index

    rows = []
    rng = np.random.default_rng(0)
    for kind in kinds:
        plan = plan_index(kind, len(vectors), vectors.shape[1], 8_000_000_000)
        builder = IndexBuilder(folder / kind.replace(",", "_"), plan, vectors.shape[1], 10_000_000, {})
        start = time.perf_counter()
        sample = vectors[rng.choice(len(vectors), min(len(vectors), max(plan.train_size, 1)), replace=False)]
        builder.train(sample)
        trained = time.perf_counter()
        builder.hold_out(np.arange(200), vectors[:200])
        for lo in range(0, len(vectors), 8192):
            builder.add(np.arange(lo, min(lo + 8192, len(vectors))), vectors[lo: lo + 8192])
        info = builder.finish()
        done = time.perf_counter()
        rows.append({"type": kind, "factory": plan.factory, "vectors": len(vectors),
                     "train_s": round(trained - start, 2), "add_per_s": len(vectors) / max(done - trained, 1e-9),
                     "recall_at_10": info["recall"].get("recall_at_10"), "nprobe": info["nprobe"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, type=Path)
    p.add_argument("--field", default="text")
    p.add_argument("--limit", type=int, default=20000)
    p.add_argument("--index-type", default="ivf", help="index type for the with/without comparison (default ivf)")
    p.add_argument("--kinds", default="flat,ivf,ivfsq,ivfpq", help="index types for the build-rate table")
    p.add_argument("--ignite-args", default="")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ignite-index-bench-") as tmp:
        work = Path(tmp)
        data = work / "in.jsonl"
        n = len(prepare_input(args.input, args.limit, args.field, data))
        env = {"IGNITE_CACHE": str(work / "cache")}
        base = ignite_cmd() + ["embed", "--input", str(data), "--quiet", "--overwrite", *args.ignite_args.split()]
        run_child(base + ["--output", str(work / "warm.npy")], env)  # export and compile once
        runs = {}
        for label, extra in (("without --index", []), ("with --index", ["--index", str(work / "idx"),
                                                                         "--index-type", args.index_type])):
            wall, _, _, err = run_child(base + ["--output", str(work / f"{len(runs)}.npy"), *extra], env)
            m = SUMMARY.search(err)
            idx = INDEX_LINE.search(err)
            runs[label] = {"wall_s": round(wall, 2), "pipeline_s": float(m.group(2)) if m else None,
                           "index_s": float(idx.group(2)) if idx else 0.0}
        overhead = runs["with --index"]["wall_s"] / runs["without --index"]["wall_s"] - 1
        vectors = np.load(work / "0.npy")
        rates = build_rates(vectors[np.any(vectors != 0, axis=1)], args.kinds.split(","), work / "rates")
    print(f"{n:,} records of {args.input.name}\n")
    print("| run | wall s | pipeline s | index s |\n|---|---|---|---|")
    for label, r in runs.items():
        print(f"| {label} | {r['wall_s']} | {r['pipeline_s']} | {r['index_s']} |")
    print(f"\n--index ({args.index_type}) adds {overhead:+.1%} wall time (goal < 5%; it includes sampling and "
          f"embedding the training sample)\n")
    print("| type | factory | vectors | train s | add+seal+recall vectors/s | recall@10 | nprobe |\n"
          "|---|---|---|---|---|---|---|")
    for r in rates:
        print(f"| {r['type']} | {r['factory']} | {r['vectors']:,} | {r['train_s']} | {r['add_per_s']:,.0f} | "
              f"{r['recall_at_10']} | {r['nprobe']} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "records": n, "runs": runs, "overhead": overhead,
                                         "build_rates": rates}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
