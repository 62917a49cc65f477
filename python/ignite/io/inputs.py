"""Expand `--input` arguments (files, directories, globs) into an ordered list of input files
with a known format and compression."""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from ignite.errors import InputError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".txt": "txt", ".parquet": "parquet"}
COMPRESSIONS = {".zst": "zstd", ".zstd": "zstd", ".gz": "gzip"}


@dataclass(frozen=True)
class InputFile:
    path: Path
    format: str  # jsonl | txt | parquet
    compression: str | None  # zstd | gzip | None
    size: int
    # A shard's slice of the file: lines (rows, for parquet) first_line+1 .. first_line+line_count;
    # line_count None: to the end. Line numbers stay those of the whole file.
    first_line: int = 0
    line_count: int | None = None

    @property
    def end_line(self) -> int | None:
        return None if self.line_count is None else self.first_line + self.line_count


def classify(path: Path) -> InputFile:
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    fmt_suffix = suffixes[-2] if compression and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    fmt = FORMATS.get(fmt_suffix)
    if fmt is None:
        known = ", ".join(sorted(FORMATS)) + " (optionally + .zst or .gz)"
        raise InputError(f"{path}: unknown input extension {''.join(path.suffixes) or '(none)'!r}; "
                         f"rename it to one of {known}")
    if fmt == "parquet" and compression:
        raise InputError(f"{path}: parquet compresses internally; drop the {suffixes[-1]} extension")
    return InputFile(path=path, format=fmt, compression=compression, size=path.stat().st_size)


def expand_inputs(args: list[str]) -> list[InputFile]:
    """Files in the order given; a directory contributes its known files sorted by name; a glob
    its matches sorted by name. Duplicates are kept once."""
    files: list[Path] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _known(p))
            if not found:
                raise InputError(f"input folder {arg} has no .jsonl, .txt or .parquet files (plain, .zst or .gz)")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(arg):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"input pattern {arg!r} matches no file; check the pattern and quote it")
            files.extend(matches)
        else:
            raise InputError(f"input file {arg} does not exist; check the path")
    seen: set[Path] = set()
    result = []
    for path in files:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            result.append(classify(path))
    return result


def _known(path: Path) -> bool:
    try:
        classify(path)
        return True
    except InputError:
        return False
