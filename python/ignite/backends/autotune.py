"""`--backend auto` / `--dtype auto` on a CPU, by measurement rather than by CPU flags.

A flag is not a speed: AVX-512 BF16 without AMX runs bf16 slower than fp32, AMX runs it ~10x
faster. So on first use of a model on a machine, each candidate backend/precision pair is opened
and timed on a few batches of the user's own records; a pair whose embeddings drift from fp32
(a row under cosine 0.999) is out; the fastest left wins. The choice is cached in `--cache-dir`
under a key of everything that could change it (CPU model and flags, threads, backend versions,
model files and options, batch size), so later runs pay nothing. Explicit `--backend` and
`--dtype` narrow the candidates; both explicit, nothing is measured. OpenVINO is also timed at
other stream counts (how its threads split into batches run at once).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ignite.backends.base import BackendUnavailable, Runner, capabilities
from ignite.backends.openvino import MAX_STREAMS
from ignite.backends.packing import fill_batch, plan_batches
from ignite.hardware import cpu_flags, cpu_has_native_bf16, cpu_model
from ignite.models.quantize import cosines

log = logging.getLogger(__name__)

# In the order tried; the first exact fp32 pair is the fidelity reference.
CPU_CANDIDATES = (("openvino", "fp32"), ("onnxruntime", "fp32"), ("openvino", "bf16"), ("torch", "bf16"))
# A pair tried only where the other did not run faithfully: torch bf16 measured slower than
# OpenVINO bf16 on every CPU so far (0.73x on 2-core AVX-512 BF16 EPYC, about 0.5x on AMX Xeon), and
# importing torch alone is a third of the 10 s the measurement may cost.
FALLBACK_FOR = {("torch", "bf16"): ("openvino", "bf16")}
FIDELITY = 0.999  # the least cosine to fp32 of any calibration row
SECONDS_PER_CANDIDATE = 0.8  # timed span per pair, after a warm-up round on every slot
SAMPLE_RECORDS = 256  # the first records of the input, tokenized, make the calibration batches
STREAM_COUNTS = (1, 2, 4)  # OpenVINO stream counts worth timing (capped by the threads)
# Another stream count replaces OpenVINO's own only when measured this much faster: second-long
# spans on shared machines vary by +-30% run to run, and on 2 cores a whole run found its choice
# (2 streams) 1.23x faster than the 1 stream a short span had preferred.
STREAMS_MARGIN = 1.15
CACHE_FORMAT = 2  # 2: OpenVINO stream counts measured too


@dataclass
class Choice:
    backend: str
    dtype: str
    why: str  # one line for the log and `ignite doctor`
    texts_per_second: dict[str, float] = field(default_factory=dict)  # "backend dtype" -> measured
    seconds: float = 0.0  # what measuring cost
    streams: int | None = None  # OpenVINO's batches at once; None: its throughput heuristic

    @property
    def label(self) -> str:
        return _label(self.backend, self.dtype, self.streams)


def _label(backend: str, dtype: str, streams: int | None) -> str:
    """'openvino fp32', or with a measured stream count 'openvino fp32 1 stream'."""
    return f"{backend} {dtype}" + (f" {streams} stream{'s' if streams > 1 else ''}" if streams else "")


Batch = tuple[np.ndarray, np.ndarray]  # ids, mask
Opener = Callable[..., Runner]  # (backend, dtype[, streams]) -> an open runner


def candidates(backend: str, dtype: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The pairs `--backend`/`--dtype` allow, and what was left out why. bf16 only where the CPU
    multiplies it natively: emulated, it is never the fastest and measuring it only costs time."""
    pairs = [(b, d) for b, d in CPU_CANDIDATES if backend in ("auto", b) and dtype in ("auto", d)]
    if dtype == "auto" and not cpu_has_native_bf16():
        return [(b, d) for b, d in pairs if d != "bf16"], ["bf16 not tried (no native bf16 on this CPU)"]
    return pairs, []


def cache_key(model_fingerprint: str, options: dict[str, Any], threads: int, batch_tokens: int,
              pairs: Sequence[tuple[str, str]]) -> str:
    versions = {}
    for dist in ("openvino", "onnxruntime", "torch"):  # read from package metadata: no import of torch
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    facts = {"format": CACHE_FORMAT, "cpu": cpu_model(), "flags": sorted(cpu_flags()), "threads": threads,
             "versions": versions, "model": model_fingerprint, "options": options, "batch_tokens": batch_tokens,
             "candidates": [list(p) for p in pairs]}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:24]


def cache_file(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "autotune" / f"{key}.json"


def load(cache_dir: Path, key: str) -> Choice | None:
    try:
        return Choice(**json.loads(cache_file(cache_dir, key).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def store(cache_dir: Path, key: str, choice: Choice) -> None:
    path = cache_file(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(choice), indent=1))
    os.replace(tmp, path)


def cached_choices(cache_dir: Path) -> list[Choice]:
    folder = Path(cache_dir) / "autotune"
    found = [load(cache_dir, p.stem) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return [c for c in found if c is not None]


def _texts_per_second(runner: Runner, batches: Sequence[Batch]) -> tuple[float, np.ndarray]:
    """Texts per second with the runner driven as the run drives it, one thread per in-flight
    slot it declares (OpenVINO's throughput mode runs a batch per stream at once), and the
    embeddings of `batches` in order. Each thread first runs every batch once, untimed: OpenVINO
    prepares its kernels per stream and shape, and a stream first meeting a shape while timed made
    two streams look slower than one."""
    slots = max(1, capabilities(runner).slots)
    warmed = threading.Barrier(slots)
    outputs: list[np.ndarray] = [np.empty(0)] * len(batches)
    began = [0.0]

    def drive(slot: int) -> float:
        for j in range(len(batches)):
            i = (slot + j) % len(batches)
            out = runner.run(*batches[i])
            if slot == 0:
                outputs[i] = out
        if warmed.wait() == 0:
            began[0] = time.perf_counter()
        warmed.wait()  # every thread starts on the same clock
        rows, i = 0, slot
        while time.perf_counter() - began[0] < SECONDS_PER_CANDIDATE:
            ids, mask = batches[i % len(batches)]
            runner.run(ids, mask)
            rows, i = rows + len(ids), i + 1
        # Each thread's own rate, up to the end of its last batch: a slot left idle while another
        # finishes a long batch is the span's artefact, not the configuration's.
        return rows / (time.perf_counter() - began[0])

    with ThreadPoolExecutor(slots) as pool:
        rate = sum(pool.map(drive, range(slots)))
    return rate, np.concatenate(outputs)


def stream_options(threads: int, tried: int) -> list[int]:
    """OpenVINO stream counts to time besides the `tried` one its throughput heuristic chose:
    fewer, wider streams can win on few cores or long batches, more on many cores."""
    return sorted({n for n in STREAM_COUNTS if n <= min(threads, MAX_STREAMS)} - {tried})


def measure(pairs: Sequence[tuple[str, str]], open_pair: Opener, batches: Sequence[Batch],
            notes: Sequence[str] = (), threads: int = 1) -> tuple[Choice, Runner]:
    """Open and time each pair on `batches`; the fastest faithful one, and its runner (still open,
    so the run does not open it twice). The fastest faithful OpenVINO precision is then timed at
    other stream counts for `threads` threads (same graph and precision: no new fidelity pass).
    `notes`: what was left out before, for the reason."""
    began = time.perf_counter()
    reference: np.ndarray | None = None
    speeds: dict[str, float] = {}
    notes = list(notes)
    best: tuple[float, str, str, int | None, Runner] | None = None
    openvino: tuple[float, str, int] | None = None  # the fastest faithful OpenVINO precision: speed, dtype, slots
    for backend, dtype in pairs:
        name = _label(backend, dtype, None)
        if (first := FALLBACK_FOR.get((backend, dtype))) is not None and _label(*first, None) in speeds:
            notes.append(f"{name} not tried ({_label(*first, None)} ran, faster on every CPU measured)")
            continue
        try:
            runner = open_pair(backend, dtype)
        except BackendUnavailable as exc:
            notes.append(f"{name} unavailable ({exc})")
            continue
        speed, out = _texts_per_second(runner, batches)
        if dtype == "fp32" and reference is None:
            reference = out
        elif reference is not None and (low := float(cosines(out, reference).min())) < FIDELITY:
            notes.append(f"{name} left out (cosine {low:.4f} to fp32)")
            continue
        speeds[name] = round(speed, 1)
        if backend == "openvino" and (openvino is None or speeds[name] > openvino[0]):
            openvino = (speeds[name], dtype, capabilities(runner).slots)
        if best is None or speeds[name] > best[0]:
            best = (speeds[name], backend, dtype, None, runner)
    if best is None:
        raise BackendUnavailable("; ".join(notes) or "no candidate backend")
    if openvino is not None:
        _, dtype, slots = openvino
        for streams in stream_options(threads, slots):
            runner = open_pair("openvino", dtype, streams)
            name = _label("openvino", dtype, streams)
            speeds[name] = round(_texts_per_second(runner, batches)[0], 1)
            if speeds[name] > best[0] * STREAMS_MARGIN:
                best = (speeds[name], "openvino", dtype, streams, runner)
    top, backend, dtype, streams, runner = best
    chosen = _label(backend, dtype, streams)
    others = [f"{n} {v / top:.2f}x" for n, v in speeds.items() if n != chosen]
    why = f"{chosen} measured fastest here ({top:,.0f} texts/s" + \
          (f"; {', '.join(others)}" if others else "") + ")" + (f"; {'; '.join(notes)}" if notes else "")
    return Choice(backend, dtype, why, speeds, round(time.perf_counter() - began, 2), streams), runner


def calibration_batches(token_ids: np.ndarray, offsets: np.ndarray, pad_id: int, batch_tokens: int,
                        count: int | None = 3, pad_multiple: int = 1) -> list[Batch]:
    """Batches of the run's shape from tokenized sample records (flat ids and offsets): the sample
    planned as the packer plans a window, `count` of its batches spread over the lengths (None:
    all of them)."""
    plan = plan_batches(np.diff(offsets), batch_tokens, pad_multiple)
    if count is None:
        picks = list(range(len(plan)))
    else:
        picks = sorted({round(i) for i in np.linspace(0, len(plan) - 1, min(count, len(plan)))})
    bounds = plan.bounds.tolist()
    return [fill_batch(token_ids, offsets, plan.order[bounds[i]:bounds[i + 1]], pad_multiple, pad_id) for i in picks]
