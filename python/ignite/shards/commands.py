"""`ignite plan` (print the shard plan) and `ignite merge` (join finished shards)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="print which slice of the input each shard embeds",
                       description="Print the shard plan every array task computes for itself: contiguous slices "
                                   "of the inputs in order, balanced by bytes, big files cut between lines.")
    p.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH", help="as for `ignite embed`")
    p.add_argument("--shards", type=int, required=True, metavar="N", help="number of shards (array tasks)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=_cmd_plan)

    m = sub.add_parser("merge", help="join the shards of `ignite embed --shard` in global row order",
                       description="Check that every shard in OUT is complete and from the same job (plan and "
                                   "options), write OUT/manifest.json listing the shards in global row order "
                                   "(global row = row_offset + local row), and optionally one output file and the "
                                   "merged index (ids = global rows).")
    m.add_argument("folder", type=Path, metavar="OUT", help="the --output folder of the shard runs")
    m.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                   help="also write every row into FILE.npy (+ FILE.ids.parquet) or FILE.parquet, as one run would")
    m.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    m.add_argument("--index", type=Path, default=None, metavar="IDX",
                   help="the index folder given to the shards (default: the one their records name)")
    from ignite.index.commands import add_on_disk_options

    add_on_disk_options(m)
    m.set_defaults(func=_cmd_merge)


def _cmd_plan(args: argparse.Namespace) -> int:
    from ignite.errors import UsageError
    from ignite.io.inputs import expand_inputs
    from ignite.shards.plan import describe, plan_shards

    if args.shards < 1:
        raise UsageError(f"--shards must be at least 1, not {args.shards}")
    plan = plan_shards(expand_inputs(args.input), args.shards)
    if args.json:
        print(json.dumps(plan.to_json(), indent=1))
    else:
        print(f"plan {plan.digest}: {len(plan.files)} file(s), {sum(f.size for f in plan.files):,} bytes, "
              f"{args.shards} shard(s)")
        print("\n".join(describe(plan)))
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from ignite.shards.merge import merge_shards

    summary = merge_shards(args.folder, args.output, args.overwrite, args.index, args.on_disk)
    print(f"ignite: {summary}", file=sys.stderr)
    return 0
