"""The live counters of one run. The stages bump their own counters (one writer each: a Python
int or float attribute, or the native pipeline's atomics); `snapshot()`, called by a collector
thread (Prometheus scrape, textfile writer, sampler), reads them all without a lock."""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ignite.telemetry.clock import BusyClock

# The stages a bottleneck can be, in data-flow order. The native ingest has a packer; the Python
# stages pack in the tokenizer thread; an image run decodes and preprocesses instead of tokenizing.
STAGES = ("reader", "tokenizer", "preprocess", "packer", "devices", "writer")
SAMPLE_SECONDS = 1.0
MAX_SAMPLES = 2048  # the series halves its resolution past this, so a run of days stays small


class CommittedStats(Protocol):
    """What the writer accounts (pipeline.writer.RunStats)."""

    records: int
    resumed_rows: int
    real_tokens: int
    padded_tokens: int
    batches: int
    statuses: collections.Counter


@dataclass
class WorkerCounters:
    """One worker thread's (a device's slot's) counts; only that thread writes them."""

    device: str
    backend: str
    dtype: str
    batches: int = 0
    records: int = 0
    clock: BusyClock = field(default_factory=BusyClock)


class Telemetry:
    def __init__(self, total_bytes: int = 0) -> None:
        self.created = time.time()
        self.phase = "setup"  # setup | running | finishing | done | interrupted | failed
        self.total_bytes = total_bytes
        self.stats: CommittedStats | None = None
        self.native: Any = None  # ignite._engine.IngestPipeline, on the native ingest path
        self.rings: dict[str, Any] = {}  # name -> a Channel (len(), capacity) on the Python path
        self.clocks: dict[str, list[BusyClock]] = collections.defaultdict(list)
        self.workers: list[WorkerCounters] = []
        self.records_read = 0  # by the Python reader thread
        self.bytes_read = 0
        self.bytes_committed = 0  # input bytes behind the committed rows (the writer)
        self._bytes_before = 0  # of them, those a resumed run had committed
        self.commits = 0
        self.last_commit = time.monotonic()
        self.started: float | None = None  # monotonic time the stages started
        self.ended: float | None = None
        self.series: list[dict[str, Any]] = []  # samples over time, for the report
        self.live: dict[str, Any] = {}  # the last sample's bottleneck, for the progress bar
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._every = SAMPLE_SECONDS

    # -- the stages register what they bump ---------------------------------------------------
    def clock(self, stage: str) -> BusyClock:
        """A new clock for one thread of `stage`; the stage's busy time is the sum of its clocks."""
        assert stage in STAGES, stage
        c = BusyClock()
        self.clocks[stage].append(c)
        return c

    def worker(self, device: str, backend: str, dtype: str) -> WorkerCounters:
        w = WorkerCounters(device, backend, dtype)
        self.workers.append(w)
        return w

    def begin(self, stats: CommittedStats, bytes_done: int = 0) -> None:
        """The stages start; `bytes_done`: input bytes behind the rows committed before (resume)."""
        self.stats, self.started, self.phase = stats, time.monotonic(), "running"
        self.bytes_committed = self._bytes_before = bytes_done
        self._sampler = threading.Thread(target=self._sample_loop, name="ignite-telemetry", daemon=True)
        self._sampler.start()

    def end(self, phase: str) -> None:
        """The stages are over (`phase`: finishing, interrupted or failed); the sampler stops."""
        if self.ended is None and self.started is not None:
            self.ended = time.monotonic()
        self.phase = phase
        self._stop.set()
        if self._sampler is not None and self._sampler is not threading.current_thread():
            self._sampler.join()
        if self.started is not None:
            self._record(self.snapshot())

    def committed(self, bytes_done: int) -> None:
        """The writer committed: called on its thread only."""
        self.commits += 1
        self.last_commit = time.monotonic()
        self.bytes_committed = bytes_done

    # -- the collector's side ------------------------------------------------------------------
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    def snapshot(self) -> dict[str, Any]:
        """Every counter now; safe from any thread."""
        elapsed = self.elapsed()
        stages: dict[str, dict[str, float]] = {}
        rings: dict[str, list[int]] = {}
        records_read, bytes_read = self.records_read, self.bytes_read
        pipe = self.native
        if pipe is not None:
            native = pipe.stats()
            for name, busy in native["busy_seconds"].items():
                stages[name] = {"busy_seconds": busy, "threads": native["threads"][name]}
            rings.update({k: list(v) for k, v in native["rings"].items()})
            records_read, bytes_read = native["records_read"], native["bytes_read"]
        for name, clocks in list(self.clocks.items()):
            stages[name] = {"busy_seconds": sum(c.seconds for c in list(clocks)), "threads": len(clocks)}
        for name, channel in list(self.rings.items()):
            rings[name] = [len(channel), channel.capacity]
        devices: dict[str, dict[str, Any]] = {}
        for w in list(self.workers):
            d = devices.setdefault(w.device, {"backend": w.backend, "dtype": w.dtype, "batches": 0, "records": 0,
                                              "busy_seconds": 0.0, "slots": 0})
            d["batches"] += w.batches
            d["records"] += w.records
            d["busy_seconds"] += w.clock.seconds
            d["slots"] += 1
        s = self.stats
        statuses = _copy_counter(s.statuses) if s is not None else {}
        committed = s.records if s is not None else 0
        resumed = s.resumed_rows if s is not None else 0
        rate = (committed - resumed) / elapsed if elapsed > 0 else 0.0
        byte_rate = (self.bytes_committed - self._bytes_before) / elapsed if elapsed > 0 else 0.0
        eta = (self.total_bytes - self.bytes_committed) / byte_rate if byte_rate > 0 else None
        return {
            "elapsed": elapsed, "phase": self.phase, "records_read": records_read, "bytes_read": bytes_read,
            "bytes_total": self.total_bytes, "bytes_committed": self.bytes_committed, "rows_committed": committed,
            "rows_resumed": resumed, "commits": self.commits,
            "seconds_since_commit": time.monotonic() - self.last_commit, "records_per_second": rate,
            "eta_seconds": None if self.phase != "running" else eta, "statuses": statuses,
            "tokens": {"real": s.real_tokens if s else 0, "padded": s.padded_tokens if s else 0},
            "batches": s.batches if s else 0, "stages": stages, "devices": devices, "rings": rings,
        }

    def live_view(self) -> str:
        """The busiest stage of the last second, for the progress bar."""
        live = self.live
        return f"{live['stage']} {live['busy_share']:.0%} busy" if live.get("stage") else ""

    def _sample_loop(self) -> None:
        while not self._stop.wait(self._every):
            self._record(self.snapshot())

    def _record(self, snap: dict[str, Any]) -> None:
        from ignite.telemetry.report import shares

        sample = {"t": round(snap["elapsed"], 3), "rows_committed": snap["rows_committed"] - snap["rows_resumed"],
                  "records_read": snap["records_read"],
                  "records_embedded": sum(d["records"] for d in snap["devices"].values()),
                  "busy": {k: v["busy_seconds"] for k, v in snap["stages"].items()} |
                  {"devices": sum(d["busy_seconds"] for d in snap["devices"].values())}}
        if self.series:
            self.live = shares(self.series[-1], sample, snap)
        self.series.append(sample)
        if len(self.series) > MAX_SAMPLES:
            self.series = self.series[::2]
            self._every *= 2


def _copy_counter(counter: collections.Counter) -> dict[str, int]:
    """A copy of the writer's status counts; the writer may add a key while this reads."""
    for _ in range(8):
        try:
            return dict(counter)
        except RuntimeError:  # changed size during the copy
            continue
    return {}
