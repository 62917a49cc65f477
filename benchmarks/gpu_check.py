#!/usr/bin/env python3
"""The timing half of benchmarks/gpu_check.sh, in one run on one machine, for each model
(all-MiniLM-L6-v2, and an e5-small-v2-architecture model with RANDOM weights: its speed is the
architecture's, its embeddings mean nothing):

- `ignite embed --gpus all` file to file (read, tokenize, infer, write; model load excluded);
- the same backend alone on the same batches (the pipeline's windows, token budget and padding),
  with as many threads as the pipeline gives it: ignite / alone = pipeline efficiency;
- sentence-transformers (fp16 on a GPU, fp32 on a CPU) at each batch size asked for; the best counts.

Writes results.json and results.md into --out and prints the table; every figure comes with the
machine's CPU model and flags and its GPU. --deadline (epoch seconds) skips what would start too
late, so the script's wall time stays bounded; rows are written as they finish.

    python benchmarks/gpu_check.py --input passages.jsonl.zst --out OUT            # GPU
    python benchmarks/gpu_check.py --cpu --input passages.jsonl.zst --limit 300 --out OUT
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, prepare_input, run_child  # noqa: E402
from benchmark import default_model, fidelity, run_ignite, run_st  # noqa: E402
from random_model import make as make_random_model  # noqa: E402

log = logging.getLogger("gpu_check")
CPU_FLAGS_SHOWN = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile")
GOALS = {"e5-small-v2 texts/s on one H100/H200": 160_000, "pipeline efficiency": 0.95,
         "x sentence-transformers fp16": 10}
STEP_MARGIN_S = 20  # a measurement is not started with less time than this left


def machine_facts() -> dict[str, Any]:
    from ignite.hardware import cpu_flags, gpu_report

    info = machine()
    report = gpu_report()
    info["cpu_flags"] = [f for f in CPU_FLAGS_SHOWN if f in cpu_flags()]
    info["gpus"] = [f"{g.name} ({g.total_memory / 2**30:.0f} GiB, sm_{g.sm[0]}{g.sm[1]})" for g in report.gpus]
    info["gpu_source"] = report.source + (f": {report.note}" if report.note else "")
    return info


def backend_alone(model: str, data: str, backend: str, dtype: str, cache: str) -> dict[str, Any]:
    """The backend `ignite embed` used, on the batches it made, with its worker threads and nothing
    else: the ceiling the pipeline is measured against."""
    import numpy as np

    from ignite.backends import open_backend
    from ignite.config import ModelOptions
    from ignite.embed import CPU_BATCH_TOKENS, CPU_WINDOW_RECORDS, GPU_BATCH_TOKENS, GPU_WINDOW_RECORDS
    from ignite.hardware import select_gpus, usable_cores
    from ignite.models import load_spec, resolve_model
    from ignite.backends.base import GPU_PAD_MULTIPLE
    from ignite.backends.packing import fill_batch, plan_batches
    from ignite.pipeline.tokenize import WindowTokenizer

    spec = load_spec(resolve_model(model), model)
    options = ModelOptions(pooling=spec.pooling, normalize=spec.normalize, max_length=spec.max_length, prefix="",
                           dim=None)
    devices = select_gpus("all")
    gpu = bool(devices)
    batch_tokens, window = (GPU_BATCH_TOKENS, GPU_WINDOW_RECORDS) if gpu else (CPU_BATCH_TOKENS, CPU_WINDOW_RECORDS)
    pad_multiple = GPU_PAD_MULTIPLE if gpu else 1
    runners = [open_backend(backend, dtype, spec, options, Path(cache), usable_cores(), device=d,
                            batch_tokens=batch_tokens) for d in devices or [None]]
    tokenizer = WindowTokenizer(spec.tokenizer_path, options.max_length, options.prefix)
    with open(data, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    batches = []
    for start in range(0, len(texts), window):
        flat, offsets = tokenizer.encode(texts[start:start + window])
        plan = plan_batches(np.diff(offsets), batch_tokens, pad_multiple, max_width=options.max_length)
        batches += [fill_batch(flat, offsets, rows, pad_multiple, tokenizer.pad_id, width=width)
                    for rows, width in zip(plan, plan.widths.tolist())]
    workers = [r for r in runners for _ in range(max(1, int(getattr(r, "slots", 1))))]
    taken = iter(range(len(batches)))
    lock = threading.Lock()

    def work(runner: Any) -> None:
        while True:
            with lock:
                i = next(taken, None)
            if i is None:
                return
            runner.run(*batches[i])

    threads = [threading.Thread(target=work, args=(r,)) for r in workers]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "batches": len(batches), "threads": len(workers), "rows": len(texts)}


def _run_backend_alone(model: str, data: Path, backend: str, dtype: str, cache: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--backend-alone", json.dumps([model, str(data), backend, dtype, str(cache)])]
    _, rss, stdout, _ = run_child(cmd)
    row = json.loads(stdout.strip().splitlines()[-1])
    return {"system": "backend alone", "backend": backend, "dtype": dtype, "seconds": row["seconds"],
            "peak_rss_mb": round(rss, 1), "settings": {"batches": row["batches"], "threads": row["threads"]}}


class Check:
    """Rows as they come, written out after each one; steps skipped past the deadline say so."""

    def __init__(self, args: argparse.Namespace, info: dict[str, Any], records: int) -> None:
        self.args, self.info, self.records = args, info, records
        self.rows: list[dict[str, Any]] = []
        self.device = ", ".join(info["gpus"]) if info["gpus"] and not args.cpu else info["cpu"]

    def time_left(self) -> float:
        return self.args.deadline - time.time() if self.args.deadline else float("inf")

    def measure(self, model_label: str, what: str, fn: Any) -> dict[str, Any] | None:
        if self.time_left() < STEP_MARGIN_S:
            self.add({"model": model_label, "system": what, "skipped": "time budget spent"})
            return None
        log.info("%s: %s ...", model_label, what)
        try:
            row = fn()
        except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the others
            log.error("%s: %s failed: %s", model_label, what, exc)
            self.add({"model": model_label, "system": what, "error": " ".join(str(exc).split())[-500:]})
            return None
        row.update(model=model_label, device=self.device, rows=self.records)
        row["texts_per_s"] = self.records / row["seconds"]
        self.add(row)
        return row

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.write()

    def doc(self) -> dict[str, Any]:
        return {"mode": "cpu" if self.args.cpu else "gpu", "machine": self.info, "input": str(self.args.input),
                "records": self.records, "steps": dict(s.split("=", 1) for s in self.args.step), "rows": self.rows}

    def write(self) -> None:
        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        doc = self.doc()
        (out / "results.json").write_text(json.dumps(doc, indent=2, default=str))
        (out / "results.md").write_text(markdown(doc) + "\n")


def _model_rows(check: Check, label: str, model: str, data: Path, ignite_input: Path, work: Path) -> None:
    args = check.args
    cache = work / "cache"
    extra = ["--gpus", "none" if args.cpu else "all"]
    # Export, graph capture and engine builds happen while the model loads, outside the timed span
    # (the run's summary line), so no warm-up run is needed; they show in `load s`.
    row = check.measure(label, "ignite", lambda: run_ignite(model, ignite_input, work, "auto", "auto", cache, extra))
    if row is not None:
        alone = check.measure(label, "backend alone",
                              lambda: _run_backend_alone(model, data, row["backend"], row["dtype"], cache))
        if alone is not None:
            row["pipeline_efficiency"] = row["texts_per_s"] / alone["texts_per_s"]
            check.write()
    st_dtype, device = ("fp32", "cpu") if args.cpu else ("fp16", "cuda:0")
    st_rows = [check.measure(label, f"sentence-transformers {st_dtype} batch {batch}",
                             lambda batch=batch: run_st(model, data, work, st_dtype, batch, device))
               for batch in args.st_batches]
    done = [r for r in st_rows if r is not None]
    if not done:
        return
    import numpy as np

    best = max(done, key=lambda r: r["texts_per_s"])
    best["best"] = True
    reference = np.load(best["output"])
    for r in ([row] if row is not None else []) + done:
        r["min_cosine_vs_st_best"] = fidelity(Path(r.pop("output")), reference)["min_cosine"]
    if row is not None:
        row["x_st_best"] = row["texts_per_s"] / best["texts_per_s"]
    check.write()


def markdown(doc: dict[str, Any]) -> str:
    info = doc["machine"]
    lines = [f"# Ignite GPU check ({doc['mode']} mode), {info['date']}", "",
             f"- CPU: {info['cpu']}, {info['cores']} cores, flags: {' '.join(info['cpu_flags']) or 'none of note'}",
             f"- GPU: {', '.join(info['gpus']) or 'none'} (found by {info['gpu_source']})",
             f"- versions: {', '.join(f'{k} {v}' for k, v in info['versions'].items())}",
             f"- input: {doc['records']:,} records of {Path(doc['input']).name}; times are file to file, model load "
             f"excluded (`load s`)",
             "- e5-small-v2 (random weights) has the e5-small-v2 architecture and RANDOM weights: its speed is "
             "the architecture's, its embeddings mean nothing",
             f"- steps: {', '.join(f'{k} {v}' for k, v in doc['steps'].items()) or '-'}", "",
             "| model | system | backend | dtype | texts/s | pipeline efficiency | x ST best | min cosine vs ST best "
             "| load s | device |", "|---" * 10 + "|"]
    for r in doc["rows"]:
        if "skipped" in r or "error" in r:
            lines.append(f"| {r['model']} | {r['system']} | {r.get('skipped') or 'failed: ' + r['error']} "
                         "| | | | | | | |")
            continue
        def num(key: str, fmt: str) -> str:
            return format(r[key], fmt) if r.get(key) is not None else ""
        batch = r.get("settings", {}).get("batch_size")
        system = r["system"] + (f" batch {batch}" if batch else "") + (" (best)" if r.get("best") else "")
        lines.append(f"| {r['model']} | {system} | {r.get('backend', '')} | {r.get('dtype', '')} | "
                     f"{r['texts_per_s']:,.1f} | {num('pipeline_efficiency', '.2f')} | {num('x_st_best', '.1f')} | "
                     f"{num('min_cosine_vs_st_best', '.5f')} | {num('load_s', '.1f')} | {r['device']} |")
    if doc["mode"] == "gpu":
        lines += ["", "Goals (issue #14): " + "; ".join(f"{k} >= {v:,}" for k, v in GOALS.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, help="JSONL corpus with a text field (.zst/.gz allowed)")
    p.add_argument("--limit", type=int, default=None, help="first N records only (default: all)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU (sentence-transformers in fp32)")
    p.add_argument("--model", default=None, help="all-MiniLM-L6-v2's folder (default: from its package)")
    p.add_argument("--st-batches", default=None, help="comma-separated batch sizes (default 128,256,512 on a GPU, "
                                                      "64 on a CPU)")
    p.add_argument("--out", type=Path, help="folder for results.json and results.md")
    p.add_argument("--deadline", type=float, default=None, help="epoch seconds by which to be done")
    p.add_argument("--step", action="append", default=[], metavar="NAME=STATUS",
                   help="an earlier step's outcome to record (gpu_check.sh: build, tests)")
    p.add_argument("--backend-alone", default=None, help=argparse.SUPPRESS)  # the child of _run_backend_alone
    args = p.parse_args(argv)
    # Our progress only: libraries imported for their versions (faiss) log at INFO too.
    logging.basicConfig(level=logging.WARNING, format="gpu_check: %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    if args.backend_alone:
        print(json.dumps(backend_alone(*json.loads(args.backend_alone))))
        return 0
    if args.input is None or args.out is None:
        p.error("--input and --out are required")
    args.st_batches = [int(b) for b in (args.st_batches or ("64" if args.cpu else "128,256,512")).split(",")]
    info = machine_facts()
    log.info("CPU %s (%s); GPU %s", info["cpu"], " ".join(info["cpu_flags"]), ", ".join(info["gpus"]) or "none")
    with tempfile.TemporaryDirectory(prefix="ignite-gpu-check-") as tmp:
        work = Path(tmp)
        data = work / "input.jsonl"
        texts = prepare_input(args.input, args.limit, "text", data)
        # The whole corpus goes to Ignite as it is (.zst through the native reader); a slice as the plain copy.
        ignite_input = args.input if args.limit is None else data
        check = Check(args, info, len(texts))
        minilm = args.model or default_model()
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # save_pretrained's bar in a log that is read later
        e5 = make_random_model("e5-small-v2", work / "e5-small-v2-random", Path(minilm))
        for label, model in (("all-MiniLM-L6-v2", minilm), ("e5-small-v2 (random weights)", str(e5))):
            _model_rows(check, label, model, data, ignite_input, work)
    print(markdown(check.doc()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
