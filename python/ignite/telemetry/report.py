"""The run report, OUT.report.json beside the output: configuration, machine, per-stage busy
share, per-device throughput, throughput over time, padding efficiency, and the bottleneck stage
with one line of advice. Written at the end of a run, on interrupt and on failure."""
from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path
from typing import Any

from ignite.telemetry.live import STAGES, Telemetry

RATE_SPAN = 5.0  # seconds a throughput point averages over
SATURATED = 0.6  # below this busy share no stage is the limit: they wait on each other
# CPU flags that decide what the CPU backends can do, shown with every figure.
MATRIX_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def _share(busy: float, threads: int, seconds: float) -> float:
    return min(1.0, busy / (seconds * max(threads, 1))) if seconds > 0 else 0.0


def stage_shares(snap: dict[str, Any], seconds: float | None = None,
                 busy: dict[str, float] | None = None) -> dict[str, float]:
    """Busy share of each stage over `seconds` (default: the whole run): its threads' busy
    seconds over the time they had. A device's slots overlap, so a device counts busy once."""
    seconds = snap["elapsed"] if seconds is None else seconds
    busy = busy or {k: v["busy_seconds"] for k, v in snap["stages"].items()} | \
        {"devices": sum(d["busy_seconds"] for d in snap["devices"].values())}
    out = {name: _share(busy.get(name, 0.0), v["threads"], seconds) for name, v in snap["stages"].items()}
    if snap["devices"]:
        out["devices"] = _share(busy.get("devices", 0.0), len(snap["devices"]), seconds)
    return {k: out[k] for k in STAGES if k in out}


def bottleneck(shares: dict[str, float], snap: dict[str, Any], tokenizer_threads: int | None = None,
               index: bool = False) -> dict[str, Any]:
    """The stage that limits the run and what to do about it."""
    if not shares:
        return {"stage": None, "busy_share": 0.0, "advice": "the run did not get to its stages"}
    stage = max(shares, key=lambda k: shares[k])
    top, dev = shares[stage], shares.get("devices", 0.0)
    busy = f"{stage} busy {top:.0%} of the run"
    devices = f", devices {dev:.0%}"
    if top < SATURATED:
        advice = (f"no stage was busy more than {top:.0%} of the run ({stage}){devices}: the stages wait on "
                  f"each other (a short run is mostly start-up); a larger --window-records keeps them fuller")
        stage = "none"
    elif stage == "devices":
        advice = (f"devices busy {dev:.0%} of the run: compute-bound, as it should be; more or faster devices, "
                  f"or a lower --dtype where it stays exact enough, go faster")
    elif stage == "tokenizer":
        n = tokenizer_threads or snap["stages"].get("tokenizer", {}).get("threads", 1)
        advice = f"{busy}{devices}: raise --tokenizer-threads (now {n})"
    elif stage == "reader":
        advice = (f"{busy}{devices}: one thread reads and parses the input; keep it uncompressed or zstd "
                  f"(gzip is slower to inflate) on a faster disk")
    elif stage == "preprocess":
        n = snap["stages"].get("preprocess", {}).get("threads", 1)
        advice = (f"{busy}{devices}: images are decoded and preprocessed on {n} threads; --image-decode fast "
                  f"decodes large JPEGs at a reduced scale, and more cores help")
    elif stage == "packer":
        advice = f"{busy}{devices}: raise --batch-tokens (fewer, larger batches to pack)"
    else:
        advice = (f"{busy}{devices}: the output is written and committed on one thread; write to a faster "
                  f"disk{' or build the index after the run' if index else ''}, or raise --window-records "
                  f"(fewer commits)")
    return {"stage": stage, "busy_share": round(top, 4), "advice": advice}


def shares(prev: dict[str, Any], cur: dict[str, Any], snap: dict[str, Any]) -> dict[str, Any]:
    """The live view between two samples (the progress bar): records/s and the busiest stage."""
    dt = cur["t"] - prev["t"]
    if dt <= 0:
        return {}
    busy = {k: v - prev["busy"].get(k, 0.0) for k, v in cur["busy"].items()}
    live = stage_shares(snap, dt, busy)
    stage = max(live, key=lambda k: live[k]) if live else None
    return {"records_per_second": (cur["rows_committed"] - prev["rows_committed"]) / dt,
            "stage": stage, "busy_share": live.get(stage, 0.0) if stage else 0.0}


def throughput(series: list[dict[str, Any]], span: float = RATE_SPAN) -> list[dict[str, float]]:
    """Records/s embedded and read, each over the `span` seconds before a sample (a commit lands a
    whole window at once, so the committed rows are given as they stand, not as a rate)."""
    out, j = [], 0
    for b in series[1:]:
        while j + 1 < len(series) and b["t"] - series[j + 1]["t"] >= span:
            j += 1
        a = series[j]
        dt = b["t"] - a["t"]
        if dt > 0:
            out.append({"t": b["t"], "rows_committed": b["rows_committed"],
                        "embedded_per_second": round((b.get("records_embedded", 0) - a.get("records_embedded", 0)) / dt, 2),
                        "read_per_second": round((b["records_read"] - a["records_read"]) / dt, 2)})
    return out


def machine() -> dict[str, Any]:
    from ignite.hardware import cpu_flags, cpu_model, usable_cores

    flags = cpu_flags()
    return {"cpu_model": cpu_model(), "cpu_flags": [f for f in MATRIX_FLAGS if f in flags], "cores": usable_cores(),
            "host": os.uname().nodename}


def build(telemetry: Telemetry, config: dict[str, Any], outcome: str, gpus: list[str] | None = None,
          tokenizer_threads: int | None = None, index: bool = False) -> dict[str, Any]:
    snap = telemetry.snapshot()
    seconds = snap["elapsed"]
    share = stage_shares(snap) if telemetry.started is not None else {}
    new = snap["rows_committed"] - snap["rows_resumed"]
    real, padded = snap["tokens"]["real"], snap["tokens"]["padded"]
    devices = {name: {**d, "busy_share": round(_share(d["busy_seconds"], 1, seconds), 4),
                      "records_per_second": round(d["records"] / seconds, 2) if seconds else 0.0,
                      "records_per_busy_second": round(d["records"] * d["slots"] / d["busy_seconds"], 2)
                      if d["busy_seconds"] else 0.0}
               for name, d in snap["devices"].items()}
    return {
        "ignite_report": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "outcome": outcome,
        "command": sys.argv,
        "config": config,
        "machine": machine() | {"gpus": gpus or []},
        "totals": {"rows_committed": snap["rows_committed"], "rows_resumed": snap["rows_resumed"],
                   "records_this_run": new, "statuses": snap["statuses"], "seconds": round(seconds, 3),
                   "records_per_second": round(new / seconds, 2) if seconds else 0.0,
                   "records_read": snap["records_read"], "bytes_read": snap["bytes_read"],
                   "batches": snap["batches"], "tokens": snap["tokens"],
                   "padding_efficiency": round(real / padded, 4) if padded else 1.0, "commits": snap["commits"]},
        "stages": _stage_rows(snap, share),
        "devices": devices,
        "bottleneck": bottleneck(share, snap, tokenizer_threads, index),
        "throughput": throughput(telemetry.series),
    }


def _stage_rows(snap: dict[str, Any], share: dict[str, float]) -> dict[str, dict[str, float]]:
    rows = {k: dict(v) for k, v in snap["stages"].items()}
    if snap["devices"]:
        rows["devices"] = {"busy_seconds": sum(d["busy_seconds"] for d in snap["devices"].values()),
                           "threads": sum(d["slots"] for d in snap["devices"].values())}
    return {k: rows[k] | {"busy_share": round(share.get(k, 0.0), 4)} for k in STAGES if k in rows}


def write(path: Path, report: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half report behind


def load(path: Path) -> dict[str, Any]:
    from ignite.errors import UsageError

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON ({exc}); give the OUT.report.json an `ignite embed` wrote") from None
    if not isinstance(report, dict) or report.get("ignite_report") != 1:
        raise UsageError(f"{path} is not an Ignite run report; give the OUT.report.json an `ignite embed` wrote")
    return report
