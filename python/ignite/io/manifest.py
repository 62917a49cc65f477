"""What a run has committed, kept in a work folder beside the output, `OUT.ignite/`:

- `run.json`, written once when the run starts: the input fingerprint (path, size and mtime of
  every input file) and every option that changes the output. `--resume` refuses when they differ.
- `manifest.json`, replaced atomically (temp file, fsync, rename, fsync of the folder) only after
  the data it describes is fsynced: committed rows and windows, the input position, the committed
  sizes of the metadata log and of the --errors file, status counts, damaged files.
- the outputs under construction (`*.partial`, `*.meta`; see io/outputs.py).

A folder rather than one file beside the output: the partial data needs a place that cannot be
mistaken for a finished output, and one folder is one thing to find, resume from or delete. Two
JSON files rather than one so that a commit rewrites a few hundred bytes whatever the number of
input files (with many small files there is a commit per file).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ignite.config import EmbedConfig
from ignite.errors import OutputError
from ignite.io.inputs import InputFile
from ignite.io.npy import fsync_dir

FORMAT = 1
WORK_SUFFIX = ".ignite"
RUN_FILE = "run.json"


def work_dir_for(output: Path) -> Path:
    return output.with_name(output.name + WORK_SUFFIX)


@dataclass
class Committed:
    """The state a crash falls back to. Input position: files before `file` are read completely;
    of `file`, `lines` lines (rows, for parquet) are consumed, or all of it when `file_done`."""

    rows: int = 0
    windows: int = 0
    file: int = 0
    lines: int = 0
    records: int = 0  # records of `file` committed
    offset: int = 0  # bytes of `file` read (compressed), for progress
    file_done: bool = False
    meta_bytes: int = 0  # committed size of the open metadata log
    errors_bytes: int = 0  # committed size of the --errors file
    statuses: dict[str, int] = field(default_factory=dict)
    damaged: list[list[Any]] = field(default_factory=list)  # [file index, line, reason]
    done: bool = False  # every input record is committed; only finishing the outputs may remain

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Committed:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def run_record(cfg: EmbedConfig, files: list[InputFile], model_fingerprint: str) -> dict[str, Any]:
    """The identity of a run: what must not change between a run and its resumption."""
    # The sizes and times taken when the inputs were listed, which the run re-checks as it reads.
    inputs = []
    for f in files:
        entry = {"path": f.resolved, "size": f.size, "mtime_ns": f.mtime_ns}
        if f.first_line or f.line_count is not None:  # a shard's slice of the file
            entry["lines"] = [f.first_line, f.line_count]
        inputs.append(entry)
    m = cfg.model
    options = {
        "model": cfg.model_name, "model_fingerprint": model_fingerprint, "pooling": m.pooling,
        "normalize": m.normalize, "max_length": m.max_length, "prefix": m.prefix, "dim": m.dim,
        "output_dtype": cfg.output_dtype, "output_kind": cfg.output_kind, "field": cfg.field,
        "id_field": cfg.id_field, "shard_rows": cfg.shard_rows if cfg.output_kind == "dir" else None,
        "window_records": cfg.window_records,
        "errors": str(cfg.errors_path.resolve()) if cfg.errors_path else None,
    }
    if cfg.image is not None:
        options["image"] = asdict(cfg.image)
    return {"format": FORMAT, "inputs": inputs, "options": options}


FLAGS = {"model": "--model", "pooling": "--pooling", "normalize": "--normalize", "max_length": "--max-length",
         "prefix": "--prefix/--prompt-name", "dim": "--dim", "output_dtype": "--output-dtype",
         "output_kind": "--output", "field": "--field", "id_field": "--id-field", "shard_rows": "--shard-rows",
         "window_records": "--window-records", "errors": "--errors",
         "image": "--image-field/--max-image-pixels/--image-decode"}


def _show(value: Any) -> str:
    return "not set" if value is None else json.dumps(value)


def difference(saved: dict[str, Any], now: dict[str, Any]) -> str | None:
    """What differs between the run being resumed and this one, in words naming the file or the
    flag; None when they agree."""
    if saved.get("format") != FORMAT:
        return f"its work folder has format {saved.get('format')}, this version of ignite writes {FORMAT}"
    old_opts, new_opts = saved["options"], now["options"]
    if old_opts["model"] != new_opts["model"]:
        return f"--model was {_show(old_opts['model'])}, now {_show(new_opts['model'])}"
    if old_opts["model_fingerprint"] != new_opts["model_fingerprint"]:
        return f"the files of model {new_opts['model']} changed since the run began (--model)"
    for key, flag in FLAGS.items():
        if old_opts.get(key) != new_opts.get(key):
            return f"{flag} was {_show(old_opts.get(key))}, now {_show(new_opts.get(key))}"
    old_in = {i["path"]: i for i in saved["inputs"]}
    new_in = {i["path"]: i for i in now["inputs"]}
    for path in old_in:
        if path not in new_in:
            return f"input {path} was part of the run and is not among the inputs now"
    for path in new_in:
        if path not in old_in:
            return f"input {path} was not part of the run"
    for old in saved["inputs"]:
        new = new_in[old["path"]]
        if old["size"] != new["size"]:
            return f"input {old['path']} changed since the run began (size {old['size']} -> {new['size']} bytes)"
        if old["mtime_ns"] != new["mtime_ns"]:
            return f"input {old['path']} changed since the run began (modification time differs)"
        if old.get("lines") != new.get("lines"):
            return f"the shard's lines of input {old['path']} are {_show(new.get('lines'))}, the run read " \
                   f"{_show(old.get('lines'))} (the shard plan changed: same --shard and inputs?)"
    if [i["path"] for i in saved["inputs"]] != [i["path"] for i in now["inputs"]]:
        return "the input files are the same but in another order"
    return None


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class WorkDir:
    def __init__(self, output: Path) -> None:
        self.path = work_dir_for(output)
        self.run_file = self.path / RUN_FILE
        self.manifest_file = self.path / "manifest.json"
        self._run_digest = ""

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, run: dict[str, Any]) -> Committed:
        """Start a fresh run: an empty folder, run.json, and a manifest of nothing committed."""
        self._discard()
        self.path.mkdir()
        data = json.dumps(run, indent=1).encode()
        atomic_write(self.run_file, data)
        self._run_digest = hashlib.sha256(data).hexdigest()
        start = Committed()
        self.commit(start)
        return start

    def load(self) -> tuple[dict[str, Any], Committed] | None:
        """The saved run and its last commit; None when nothing was ever committed."""
        if not self.manifest_file.is_file():
            return None
        try:
            data = self.run_file.read_bytes()
            manifest = json.loads(self.manifest_file.read_bytes())
            run = json.loads(data)
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot read the work folder {self.path} ({exc}); pass --overwrite to start over") \
                from None
        self._run_digest = hashlib.sha256(data).hexdigest()
        if manifest.get("run_sha256") != self._run_digest:
            raise OutputError(f"{self.manifest_file} does not belong to {self.run_file}; "
                              f"pass --overwrite to start over")
        return run, Committed.from_dict(manifest["committed"])

    def commit(self, state: Committed) -> None:
        body = {"format": FORMAT, "run_sha256": self._run_digest, "committed": asdict(state)}
        atomic_write(self.manifest_file, json.dumps(body, indent=1).encode())

    def remove(self) -> None:
        self._discard()

    def _discard(self) -> None:
        """Delete the folder so that a kill at any moment leaves it whole or absent: a half-deleted
        one (manifest.json without run.json) would refuse the next --resume. It is renamed away
        first, atomically; what a kill leaves of an earlier discard is swept here too."""
        parent = self.path.parent
        if self.path.exists():
            os.rename(self.path, parent / f".{self.path.name}.discard-{os.getpid()}")
            fsync_dir(parent)
        for stale in parent.glob(f".{self.path.name}.discard-*"):
            shutil.rmtree(stale, ignore_errors=True)
