"""The run's counters in Prometheus' text format: served on --metrics-port (/metrics) and written
to --metrics-file for node_exporter's textfile collector. A custom collector reads a snapshot at
each scrape, so the stages never take a lock to be measured."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ignite.errors import UsageError
from ignite.telemetry.live import Telemetry

log = logging.getLogger(__name__)



class IgniteCollector:
    def __init__(self, telemetry: Telemetry, info: dict[str, str]) -> None:
        self.telemetry, self.info = telemetry, info

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        s = self.telemetry.snapshot()
        yield InfoMetricFamily("ignite_run", "What this run embeds and with what", value=self.info)
        phase = GaugeMetricFamily("ignite_phase", "1 for the phase the run is in", labels=["phase"])
        phase.add_metric([s["phase"]], 1)
        yield phase
        yield GaugeMetricFamily("ignite_start_time_seconds", "When the run started, Unix time",
                                value=self.telemetry.created)
        yield CounterMetricFamily("ignite_records_read", "Records read from the inputs by this process",
                                  value=s["records_read"])
        records = CounterMetricFamily("ignite_records", "Records committed to the outputs by this process, by "
                                      "status (ok: embedded)", labels=["status"])
        for status, n in sorted(s["statuses"].items()):
            records.add_metric([status], n)
        yield records
        yield CounterMetricFamily("ignite_input_read_bytes", "Input file bytes read (compressed as stored)",
                                  value=s["bytes_read"])
        yield GaugeMetricFamily("ignite_input_bytes", "Size of all the inputs", value=s["bytes_total"])
        yield GaugeMetricFamily("ignite_input_committed_bytes", "Input bytes behind the committed rows",
                                value=s["bytes_committed"])
        tokens = CounterMetricFamily("ignite_tokens", "Tokens sent to the devices: real, and padded (real + padding)",
                                     labels=["kind"])
        tokens.add_metric(["real"], s["tokens"]["real"])
        tokens.add_metric(["padded"], s["tokens"]["padded"])
        yield tokens
        yield CounterMetricFamily("ignite_batches", "Batches embedded and committed", value=s["batches"])
        busy = CounterMetricFamily("ignite_stage_busy_seconds", "Wall seconds each stage's threads spent working "
                                   "(waits left out)", labels=["stage"])
        threads = GaugeMetricFamily("ignite_stage_threads", "Threads of each stage", labels=["stage"])
        for name, v in s["stages"].items():
            busy.add_metric([name], v["busy_seconds"])
            threads.add_metric([name], v["threads"])
        yield busy
        yield threads
        items = GaugeMetricFamily("ignite_ring_items", "Items waiting in each ring between stages", labels=["ring"])
        capacity = GaugeMetricFamily("ignite_ring_capacity", "Capacity of each ring", labels=["ring"])
        for name, (n, cap) in s["rings"].items():
            items.add_metric([name], n)
            capacity.add_metric([name], cap)
        yield items
        yield capacity
        labels = ["device", "backend", "dtype"]
        d_batches = CounterMetricFamily("ignite_device_batches", "Batches each device embedded", labels=labels)
        d_records = CounterMetricFamily("ignite_device_records", "Records each device embedded", labels=labels)
        d_busy = CounterMetricFamily("ignite_device_busy_seconds", "Seconds each device spent embedding (summed "
                                     "over its slots)", labels=labels)
        for name, d in s["devices"].items():
            key = [name, d["backend"], d["dtype"]]
            d_batches.add_metric(key, d["batches"])
            d_records.add_metric(key, d["records"])
            d_busy.add_metric(key, d["busy_seconds"])
        yield d_batches
        yield d_records
        yield d_busy
        yield from _gpu_metrics(list(s["devices"]))
        yield GaugeMetricFamily("ignite_rows_committed", "Rows of the output committed (resumed runs' included)",
                                value=s["rows_committed"])
        yield CounterMetricFamily("ignite_commits", "Commits of the outputs", value=s["commits"])
        yield GaugeMetricFamily("ignite_commit_lag_rows", "Records read but not yet committed",
                                value=max(0, s["rows_resumed"] + s["records_read"] - s["rows_committed"]))
        yield GaugeMetricFamily("ignite_commit_lag_seconds", "Seconds since the last commit",
                                value=s["seconds_since_commit"])
        eta = s["eta_seconds"]
        yield GaugeMetricFamily("ignite_eta_seconds", "Seconds left, from the input bytes committed so far (NaN "
                                "while unknown)", value=math.nan if eta is None else eta)


def _gpu_metrics(devices: list[str]) -> Iterator[Any]:
    """GPU utilisation and memory from NVML, where it is present (the devices this run uses)."""
    from ignite.telemetry.nvml import query

    readings = [(d, r) for d in devices if d.startswith("cuda") and (r := query(d)) is not None]
    if not readings:
        return
    from prometheus_client.core import GaugeMetricFamily

    util = GaugeMetricFamily("ignite_gpu_utilization_ratio", "GPU busy share over NVML's last sample period",
                             labels=["device"])
    used = GaugeMetricFamily("ignite_gpu_memory_used_bytes", "GPU memory in use", labels=["device"])
    for device, r in readings:
        util.add_metric([device], r.utilization)
        used.add_metric([device], r.memory_used)
    yield util
    yield used


class MetricsExport:
    """--metrics-port and --metrics-file for one run; a context manager that stops both and
    writes the file a last time on exit."""

    def __init__(self, telemetry: Telemetry, info: dict[str, str], port: int | None, file: Path | None,
                 interval: float) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(IgniteCollector(telemetry, info))
        self.port, self.file, self.interval = port, file, interval
        self._server: Any = None
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def __enter__(self) -> MetricsExport:
        if self.port is not None:
            from prometheus_client import start_http_server

            try:
                self._server, _ = start_http_server(self.port, registry=self.registry)
            except OSError as exc:
                raise UsageError(f"cannot serve metrics on port {self.port}: {exc.strerror or exc}; pick another "
                                 f"--metrics-port (0: any free port)") from None
            self.port = self._server.server_port
            log.info("metrics on http://%s:%d/metrics", os.uname().nodename, self.port)
        if self.file is not None:
            self.write_file()  # fails now, not in the writer thread, when the folder is wrong
            self._writer = threading.Thread(target=self._write_loop, name="ignite-metrics-file", daemon=True)
            self._writer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
            self.write_file()
        # The server is left to end with the process: shutdown() waits out its 0.5 s poll, a
        # cost every run would pay, and a last scrape still sees the final counts.

    def write_file(self) -> None:
        """Atomically (prometheus_client writes a temporary file and renames it), so the textfile
        collector never reads half of it."""
        from prometheus_client import write_to_textfile

        assert self.file is not None
        try:
            write_to_textfile(str(self.file), self.registry)
        except OSError as exc:
            raise UsageError(f"cannot write --metrics-file {self.file}: {exc.strerror or exc}") from None

    def _write_loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write_file()
            except UsageError as exc:  # the disk filled up mid-run: the run goes on without the file
                log.warning("%s", exc)


def open_metrics(telemetry: Telemetry, info: dict[str, str], port: int | None, file: Path | None,
                 interval: float) -> contextlib.AbstractContextManager[object]:
    """The exports asked for, the file rewritten every `interval` seconds; nothing (not even the
    prometheus_client import) when none is."""
    if port is None and file is None:
        return contextlib.nullcontext()
    return MetricsExport(telemetry, info, port, file, interval)


def metrics_port(value: int | None) -> int | None:
    """--metrics-port, else IGNITE_METRICS_PORT."""
    if value is not None:
        return value
    env = os.environ.get("IGNITE_METRICS_PORT", "").strip()
    if not env:
        return None
    if not env.isdigit() or int(env) > 65535:
        raise UsageError(f"IGNITE_METRICS_PORT={env!r} is not a port number (0 to 65535)")
    return int(env)
