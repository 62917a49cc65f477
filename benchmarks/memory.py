#!/usr/bin/env python3
"""Bounded memory: peak RSS of `ignite embed` on a small and a large prefix of one corpus. The
rings bound what is in flight, so the two peaks should differ by little (goal: < 25%).

    python benchmarks/memory.py --input corpus.jsonl.zst --small 10000 --large 80000
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ignite_cmd, machine, prepare_input, run_child  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, type=Path)
    p.add_argument("--field", default="text")
    p.add_argument("--small", type=int, default=10000)
    p.add_argument("--large", type=int, default=80000)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--ignite-args", default="", help="extra arguments for both runs")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ignite-mem-") as tmp:
        work = Path(tmp)
        env = {"IGNITE_CACHE": str(work / "cache")}
        # Warm-up: the one-time ONNX export loads torch, which must not count against either run.
        warm = work / "warm.jsonl"
        prepare_input(args.input, 50, args.field, warm)
        run_child(ignite_cmd() + ["embed", "--input", str(warm), "--output", str(work / "warm.npy"), "--dtype",
                                  args.dtype, "--quiet", *args.ignite_args.split()], env)
        for n in (args.small, args.large):
            data = work / f"in-{n}.jsonl"
            got = len(prepare_input(args.input, n, args.field, data))
            cmd = ignite_cmd() + ["embed", "--input", str(data), "--output", str(work / f"out-{n}.npy"),
                                  "--dtype", args.dtype, "--quiet", "--overwrite", *args.ignite_args.split()]
            wall, rss, _, _ = run_child(cmd, env)
            rows.append({"records": got, "peak_rss_mb": round(rss, 1), "seconds": round(wall, 1)})
            print(f"{got:>9,} records  peak RSS {rss:8.1f} MB  ({wall:.0f} s)", file=sys.stderr)
    growth = rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"] - 1
    print("| records | peak RSS MB | wall s |\n|---|---|---|")
    for r in rows:
        print(f"| {r['records']:,} | {r['peak_rss_mb']:.0f} | {r['seconds']} |")
    print(f"\npeak RSS grows {growth:+.1%} from {rows[0]['records']:,} to {rows[1]['records']:,} records "
          f"(goal: < 25%)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "runs": rows, "growth": growth}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
