"""`ignite report --plot`: a run report as a picture: throughput over time above, each stage's
busy share below with the bottleneck marked, so a user can look rather than read."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ignite.telemetry.report import RATE_SPAN


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), gridspec_kw={"height_ratios": [3, 2]})
    series = report.get("throughput") or []
    t = [p["t"] for p in series]
    top.plot(t, [p["read_per_second"] for p in series], label="read", color="#9aa5b1", linewidth=1)
    top.plot(t, [p["embedded_per_second"] for p in series], label="embedded", color="#1f77b4", linewidth=1.6)
    totals = report["totals"]
    top.axhline(totals["records_per_second"], color="#1f77b4", linestyle="--", linewidth=0.8,
                label=f"run mean {totals['records_per_second']:,.0f}/s")
    top.set_xlabel("seconds since the stages started")
    top.set_ylabel(f"records / s (over {RATE_SPAN:.0f} s)")
    top.grid(alpha=0.3)
    rows = top.twinx()
    rows.step(t, [p["rows_committed"] for p in series], where="post", color="#2ca02c", linewidth=1,
              label="rows committed")
    rows.set_ylabel("rows committed")
    rows.set_ylim(bottom=0)
    lines, labels = top.get_legend_handles_labels()
    more, more_labels = rows.get_legend_handles_labels()
    top.legend(lines + more, labels + more_labels, loc="lower right", fontsize=8)
    cfg, m = report.get("config", {}), report.get("machine", {})
    top.set_title(f"{cfg.get('model_name', '?')} on {', '.join(report.get('devices', {})) or '?'}: "
                  f"{totals['records_this_run']:,} records in {totals['seconds']:.0f}s ({report['outcome']})\n"
                  f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, {' '.join(m.get('cpu_flags', []))}",
                  fontsize=9)

    stages = report.get("stages", {})
    names = list(stages)
    shares = [100 * stages[n]["busy_share"] for n in names]
    neck = report.get("bottleneck", {}).get("stage")
    colors = ["#d62728" if n == neck else "#7f7f7f" for n in names]
    bottom.barh(names, shares, color=colors)
    for y, (n, s) in enumerate(zip(names, shares)):
        bottom.text(s + 1 if s < 75 else s - 24, y, f"{s:.0f}%  ({stages[n]['threads']} thread{'s' if stages[n]['threads'] != 1 else ''})",
                    va="center", fontsize=8)
    bottom.set_xlim(0, 100)
    bottom.invert_yaxis()
    bottom.set_xlabel("busy share of the run, % (red: the bottleneck)")
    bottom.set_title(_wrap(report.get("bottleneck", {}).get("advice", "")), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _wrap(text: str, width: int = 110) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
