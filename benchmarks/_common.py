"""Shared pieces of the benchmark scripts: preparing one input file for every system, running a
system in its own child process (so its peak RSS is its own), machine and version facts."""
from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".zst":
        import zstandard

        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")), encoding="utf-8")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def prepare_input(source: Path, limit: int | None, field: str, dest: Path) -> list[str]:
    """The first `limit` records of `source` as a plain JSONL file every system reads."""
    texts = []
    with open_text(source) as f, open(dest, "w", encoding="utf-8") as out:
        for line in itertools.islice((ln for ln in f if ln.strip()), limit):
            text = json.loads(line)[field]
            texts.append(text)
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return texts


def ignite_cmd() -> list[str]:
    custom = os.environ.get("IGNITE_CMD")
    return shlex.split(custom) if custom else [sys.executable, "-m", "ignite"]


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str, str]:
    """(wall seconds, peak RSS MB of the child, stdout, stderr). Each call is a fresh process
    whose own ru_maxrss is read from wait4, so runs do not share a high-water mark."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    import threading

    readers = [threading.Thread(target=lambda s, c: c.append(s.read()), args=(proc.stdout, out_chunks)),
               threading.Thread(target=lambda s, c: c.append(s.read()), args=(proc.stderr, err_chunks))]
    for t in readers:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    wall = time.perf_counter() - start
    stdout, stderr = "".join(out_chunks), "".join(err_chunks)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024, stdout, stderr


# The CPU features that decide which precision multiplies fastest, printed with every figure.
MATMUL_FLAGS = {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
                "amx_bf16", "amx_int8"}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("ignite", "torch", "sentence_transformers", "onnxruntime", "openvino", "transformers", "faiss"):
        try:
            versions[mod] = str(getattr(__import__(mod), "__version__", "?"))
        except Exception:  # noqa: BLE001 - a missing package is just reported
            versions[mod] = "not installed"
    flags = set()
    try:
        flags = set(next(ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "amx": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags, "versions": versions,
            "matmul_flags": sorted(flags & MATMUL_FLAGS),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
