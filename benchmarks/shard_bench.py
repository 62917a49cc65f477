#!/usr/bin/env python3
"""Scale-out on one machine: wall time of N shards run in parallel (`ignite embed --shard I/N`,
cores split between them) plus `ignite merge`, against one process on the same input; and the
merge's cost per million rows, measured in-process on synthetic shards of --merge-rows rows.

    python benchmarks/shard_bench.py --input ../shared/data/passages.jsonl.zst --limit 4000
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ignite_cmd, machine, prepare_input, run_child  # noqa: E402


def parallel_shards(inputs: list[str], out: Path, shards: int, common: list[str], threads: int) -> float:
    """Wall seconds from starting every shard process to the last one's exit."""
    start = time.perf_counter()
    procs = [subprocess.Popen([*ignite_cmd(), "embed", "--input", *inputs, "--output", str(out), "--shard",
                               f"{i}/{shards}", "--threads", str(threads), *common],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(shards)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"shard failed ({p.returncode}): {err[-2000:]}")
    return time.perf_counter() - start


def synthetic_shards(out: Path, rows: int, shards: int, dim: int) -> None:
    """Shard folders as `ignite embed --shard` leaves them, with random vectors and default ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ignite.io.outputs import meta_schema

    rng = np.random.default_rng(0)
    per = rows // shards
    out.mkdir()
    for i in range(shards):
        name = f"shard-{i:05d}-of-{shards:05d}"
        (out / name).mkdir()
        np.save(out / name / "part-00000.npy", rng.standard_normal((per, dim), dtype=np.float32))
        local = np.arange(per, dtype=np.int64)
        files = pa.DictionaryArray.from_arrays(pa.array(np.zeros(per, np.int32)), ["in.jsonl"])
        pq.write_table(pa.table({"row": local, "id": local, "file": files,
                                 "line": local + 1, "status": pa.array(["ok"] * per).dictionary_encode()},
                                schema=meta_schema(False)), out / name / "part-00000.parquet")
        record = {"format": 1, "shard": i, "shards": shards, "plan": "synthetic", "config": "synthetic", "rows": per,
                  "string_ids": False, "output_dtype": "float32", "index": None}
        (out / f"{name}.json").write_text(json.dumps(record))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, required=True, help="JSONL(.zst) with a text field")
    p.add_argument("--limit", type=int, default=4000, help="records taken from the input (default 4000)")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--model", default=None, help="model name or path (default: ignite's default model)")
    p.add_argument("--merge-rows", type=int, default=200_000, help="rows of the synthetic merge (default 200K)")
    p.add_argument("--dim", type=int, default=384, help="dimension of the synthetic merge (default 384)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    common = ["--quiet", *(["--model", args.model] if args.model else [])]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "input.jsonl"
        prepare_input(args.input, args.limit, "text", data)
        single, _, _, _ = run_child([*ignite_cmd(), "embed", "--input", str(data), "--output", str(work / "one.npy"),
                                     "--threads", str(cores), *common])
        threads = max(1, cores // args.shards)
        sharded = parallel_shards([str(data)], work / "out", args.shards, common, threads)
        merge, _, _, _ = run_child([*ignite_cmd(), "merge", str(work / "out"), "--output", str(work / "all.npy")])
        synthetic = work / "synthetic"
        synthetic_shards(synthetic, args.merge_rows, args.shards, args.dim)
        from ignite.shards.merge import merge_shards

        started = time.perf_counter()  # in this process: the cost of the merge, not of starting Python
        merge_shards(synthetic, work / "big.npy", False, None, None)
        big = time.perf_counter() - started
    result = {
        "machine": machine(), "records": args.limit, "shards": args.shards, "threads_per_shard": threads,
        "model": args.model or "default",
        "single_process_s": round(single, 2), "shards_parallel_s": round(sharded, 2), "merge_s": round(merge, 2),
        "shards_plus_merge_s": round(sharded + merge, 2), "speedup": round(single / (sharded + merge), 3),
        "merge_synthetic": {"rows": args.merge_rows, "dim": args.dim, "seconds": round(big, 2),
                            "seconds_per_million_rows": round(big / args.merge_rows * 1e6, 2)},
    }
    m = result["machine"]
    print(f"CPU: {m['cpu']} ({m['cores']} cores; AMX {m['amx']}, AVX-512 BF16 {m['avx512_bf16']})")
    print(f"{'run':<40} {'seconds':>9}")
    print(f"{'one process, ' + str(args.limit) + ' records':<40} {single:>9.1f}")
    print(f"{f'{args.shards} shards in parallel ({threads} thread(s) each)':<40} {sharded:>9.1f}")
    print(f"{'merge of those shards (--output .npy)':<40} {merge:>9.1f}")
    print(f"{'shards + merge (speedup vs one process)':<40} {sharded + merge:>9.1f}  ({result['speedup']:.2f}x)")
    print(f"{'merge, per million rows (dim ' + str(args.dim) + ')':<40} "
          f"{result['merge_synthetic']['seconds_per_million_rows']:>9.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
