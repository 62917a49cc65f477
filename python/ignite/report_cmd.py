"""`ignite report OUT.report.json [--plot report.png]`: a run report as a table, and as a picture."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ignite.telemetry import report as run_report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="show a run report (OUT.report.json) and draw it",
                       description="Print what a run report says (throughput, each stage's busy share, the "
                                   "bottleneck and what to do about it) and, with --plot, draw it.")
    p.add_argument("report", type=Path, metavar="REPORT", help="the OUT.report.json `ignite embed` wrote")
    p.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="draw throughput over time and the stages' busy share into this PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = run_report.load(args.report)
    t, m = report["totals"], report["machine"]
    out = sys.stdout
    print(f"{args.report}: {report['outcome']}, {t['records_this_run']:,} records in {t['seconds']:.1f}s "
          f"({t['records_per_second']:,.0f} rec/s), padding efficiency {100 * t['padding_efficiency']:.0f}%",
          file=out)
    print(f"machine: {m['cpu_model']}, {m['cores']} cores, flags {' '.join(m['cpu_flags']) or '-'}"
          f"{', GPUs ' + ', '.join(m['gpus']) if m.get('gpus') else ''}", file=out)
    print(f"{'stage':<10} {'threads':>7} {'busy s':>9} {'busy %':>7}", file=out)
    for name, s in report["stages"].items():
        print(f"{name:<10} {s['threads']:>7} {s['busy_seconds']:>9.1f} {100 * s['busy_share']:>6.0f}%", file=out)
    for name, d in report["devices"].items():
        print(f"device {name}: {d['backend']} {d['dtype']}, {d['records']:,} records in {d['batches']:,} batches, "
              f"{d['records_per_busy_second']:,.0f} rec/s while busy", file=out)
    print(f"bottleneck: {report['bottleneck']['advice']}", file=out)
    if args.plot is not None:
        from ignite.telemetry.plot import plot

        plot(report, args.plot)
        print(f"plot: {args.plot}", file=out)
    return 0
