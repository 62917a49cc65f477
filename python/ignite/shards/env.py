"""Which shard this task is: `--shard I/N`, or `--shard auto` from the array variables of the
scheduler running it (SLURM job arrays, Kubernetes Indexed Jobs, AWS Batch array jobs). Light on
imports: `ignite embed` uses it before taking its lock, ahead of the heavy imports."""
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from ignite.errors import UsageError


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise UsageError(f"--shard auto: ${name} is {env[name]!r}, not a number") from None


def resolve_shard(spec: str, shards: int | None, env: Mapping[str, str]) -> tuple[int, int]:
    """(index, count), index 0-based. `shards` is --shards N: required where the scheduler does
    not tell the array size, checked against it where it does."""
    if spec != "auto":
        index, count = _parse(spec)
        if shards is not None and shards != count:
            raise UsageError(f"--shard {spec} says {count} shards but --shards says {shards}; give one of them")
    elif "SLURM_ARRAY_TASK_ID" in env:
        index, count = _slurm(env)
        if shards is not None and shards != count:
            raise UsageError(f"--shard auto: the SLURM array has {count} tasks but --shards says {shards}; "
                             f"submit the array with --array=0-{shards - 1}")
    elif "JOB_COMPLETION_INDEX" in env:
        if shards is None:
            raise UsageError("--shard auto on a Kubernetes Indexed Job needs --shards N (the Job's completions)")
        index, count = _int(env, "JOB_COMPLETION_INDEX"), shards
    elif "AWS_BATCH_JOB_ARRAY_INDEX" in env:
        if shards is None:
            raise UsageError("--shard auto on an AWS Batch array job needs --shards N (the array size)")
        index, count = _int(env, "AWS_BATCH_JOB_ARRAY_INDEX"), shards
    else:
        raise UsageError("--shard auto found no array task variable (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, "
                         "AWS_BATCH_JOB_ARRAY_INDEX); run it as an array task or give --shard I/N")
    if not 0 <= index < count:
        raise UsageError(f"shard index {index} is outside 0..{count - 1} ({count} shards)")
    return index, count


def shard_name(index: int, count: int) -> str:
    return f"shard-{index:05d}-of-{count:05d}"


def shard_paths(args: argparse.Namespace) -> None:
    """With --shard, point --output, --errors and --index at this task's shard (OUT/<shard>/,
    FILE.<shard>.jsonl, IDX/<shard>/) before anything is locked or read: each shard is an
    ordinary run with its own output, work folder and lock. Without it, nothing changes."""
    if args.shard is None:
        if args.shards is not None:
            raise UsageError("--shards N goes with --shard auto (or --shard I/N); without --shard the run is whole")
        return
    if args.output.suffix.lower() in (".npy", ".parquet"):
        raise UsageError(f"--shard writes a folder per shard: give --output a folder (e.g. {args.output.stem}/), "
                         f"then `ignite merge {args.output.stem} --output {args.output.name}`")
    args.shard_index, args.shard_count = resolve_shard(args.shard, args.shards, os.environ)
    name = shard_name(args.shard_index, args.shard_count)
    try:
        args.output.mkdir(exist_ok=True)  # every task of the job may create it
    except FileNotFoundError:
        raise UsageError(f"output folder {args.output.parent} does not exist; create it first") from None
    except FileExistsError:
        raise UsageError(f"output {args.output} is a file; --shard writes a folder of shards there") from None
    args.output = args.output / name
    if args.errors is not None:
        args.errors = args.errors.with_name(f"{args.errors.stem}.{name}{args.errors.suffix}")
    if args.index is not None:
        # IDX is trained once (`ignite index train`); each shard adds into a clone, in IDX/<shard>/.
        args.index_trained, args.index = args.index, args.index / name


def _parse(spec: str) -> tuple[int, int]:
    index, sep, count = spec.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or int(count) < 1:
        raise UsageError(f"--shard {spec!r}: expected I/N (0 <= I < N, e.g. 0/4) or auto")
    return int(index), int(count)


def _slurm(env: Mapping[str, str]) -> tuple[int, int]:
    """SLURM numbers tasks from _MIN (an array 1-4 is as good as 0-3); _COUNT and _MIN/_MAX must
    agree, which they do not for a stepped (0-7:2) or sparse (1,3,8) array."""
    task = _int(env, "SLURM_ARRAY_TASK_ID")
    lo = _int(env, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in env else None
    hi = _int(env, "SLURM_ARRAY_TASK_MAX") if "SLURM_ARRAY_TASK_MAX" in env else None
    count = _int(env, "SLURM_ARRAY_TASK_COUNT") if "SLURM_ARRAY_TASK_COUNT" in env else None
    if lo is None or (hi is None and count is None):
        raise UsageError("--shard auto: SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_MIN with "
                         "SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX; give --shard I/N")
    if hi is not None and count is not None and hi - lo + 1 != count:
        raise UsageError(f"--shard auto: the SLURM array {lo}-{hi} has {count} tasks, not {hi - lo + 1}: "
                         f"a stepped or sparse --array cannot number shards; use a contiguous range like 0-{count - 1}")
    return task - lo, count if count is not None else hi - lo + 1  # type: ignore[operator]
