"""One array task's run: `ignite embed --shard I/N --output OUT` is an ordinary run (its own work
folder, manifest and --resume) of its slice of the plan, into `OUT/shard-0000I-of-0000N/`. When
it finishes, `OUT/shard-0000I-of-0000N.json` records the plan, the configuration and the rows:
that file is what `ignite merge` takes as proof that the shard is complete."""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ignite.config import EmbedConfig
from ignite.errors import UsageError
from ignite.io.inputs import InputFile
from ignite.io.manifest import WorkDir, atomic_write, run_record
from ignite.models import ModelSpec
from ignite.models.export import model_fingerprint
from ignite.shards.env import shard_name
from ignite.shards.plan import ShardPlan, plan_shards

log = logging.getLogger("ignite")

RECORD_FORMAT = 1


def add_embed_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("scale-out (one slice of the input per array task; then `ignite merge`)")
    g.add_argument("--shard", default=None, metavar="I/N|auto",
                   help="embed shard I of N (0-based) into OUT/shard-0000I-of-0000N/; auto: from "
                        "SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX (Kubernetes) or AWS_BATCH_JOB_ARRAY_INDEX")
    g.add_argument("--shards", type=int, default=None, metavar="N",
                   help="shard count, for --shard auto where the scheduler does not say it (Kubernetes, AWS Batch)")
    parser.set_defaults(shard_index=None, shard_count=None)  # set by env.shard_paths


def config_digest(run: dict[str, Any]) -> str:
    """What must be equal across the shards of one job: every option that changes the output. Not
    --errors (a file per shard) nor the window size (commits only; it defaults by device, and a
    job may mix GPU and CPU nodes)."""
    options = {k: v for k, v in run["options"].items() if k not in ("errors", "window_records")}
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]


def record_path(root: Path, name: str) -> Path:
    return root / f"{name}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        raise UsageError(f"{path} is not a shard record (unreadable JSON); delete it and rerun that shard") from None


@dataclass
class ShardRun:
    index: int
    count: int
    plan: ShardPlan
    root: Path  # OUT: the folder of every shard
    cfg: EmbedConfig  # the run of this shard: output OUT/<shard>/
    files: list[InputFile]
    config: str
    index_folder: Path | None
    complete: bool = False

    @property
    def name(self) -> str:
        return shard_name(self.index, self.count)

    def finish(self) -> None:
        """Record the finished shard (atomically: present means complete)."""
        import pyarrow.parquet as pq

        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(self.cfg.output.glob("part-*.parquet")))
        record = {"format": RECORD_FORMAT, "shard": self.index, "shards": self.count, "plan": self.plan.digest,
                  "config": self.config, "rows": rows, "string_ids": self.cfg.id_field is not None,
                  "output_dtype": self.cfg.output_dtype,
                  "index": str(self.index_folder.resolve()) if self.index_folder else None}
        atomic_write(record_path(self.root, self.name), json.dumps(record, indent=1).encode())
        log.info("shard %d of %d complete: %s rows in %s", self.index, self.count, f"{rows:,}", self.cfg.output)


def open_shard(args: argparse.Namespace, cfg: EmbedConfig, spec: ModelSpec, files: list[InputFile]) -> ShardRun:
    """This task's shard (its paths set by env.shard_paths): the plan, its inputs, and whether
    it has finished before."""
    index, count = args.shard_index, args.shard_count
    plan = plan_shards(files, count)
    root, name = cfg.output.parent, shard_name(index, count)
    shard_files = plan.inputs(index)
    config = config_digest(run_record(cfg, shard_files, model_fingerprint(spec)))
    shard = ShardRun(index, count, plan, root, cfg, shard_files, config, args.index)
    log.info("shard %d of %d (plan %s): %s", index, count, plan.digest,
             "; ".join(f"{f.path} lines {f.first_line + 1}-{'end' if f.end_line is None else f.end_line}"
                       for f in shard_files) or "no input")
    path = record_path(root, name)
    record = read_record(path)
    if record is not None and args.overwrite:
        path.unlink()
    elif record is not None:
        if (record["plan"], record["config"]) != (plan.digest, config):
            raise UsageError(f"{path} records a finished shard of another job (its inputs, plan or options differ); "
                             f"pass --overwrite to redo it, or use another --output")
        log.info("%s is already complete (%s rows); nothing to do", cfg.output, f"{record['rows']:,}")
        shard.complete = True
    elif cfg.output.is_dir() and not WorkDir(cfg.output).exists() and any(cfg.output.glob("part-*")) \
            and args.resume:
        shard.finish()  # the run finished but was stopped before recording it
        shard.complete = True
    elif not shard_files:  # more shards than the input could be cut into: nothing to embed
        shard.finish()
        shard.complete = True
    return shard
