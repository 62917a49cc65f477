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
    mtime_ns: int = 0
    # A shard's slice of the file: lines (rows, for parquet) first_line+1 .. first_line+line_count;
    # line_count None: to the end. Line numbers stay those of the whole file.
    first_line: int = 0
    line_count: int | None = None

    @property
    def end_line(self) -> int | None:
        return None if self.line_count is None else self.first_line + self.line_count


    def change(self) -> str | None:
        """How the file differs now from when it was listed (size, modification time, gone), in
        words; None when it looks the same."""
        try:
            st = self.path.stat()
        except OSError as exc:
            return f"it can no longer be read ({exc.strerror})"
        if st.st_size != self.size:
            grew = "grew" if st.st_size > self.size else "shrank"
            return f"it {grew} from {self.size:,} to {st.st_size:,} bytes"
        if st.st_mtime_ns != self.mtime_ns:
            return "it was rewritten (same size, new modification time)"
        return None


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
    st = path.stat()
    return InputFile(path=path, format=fmt, compression=compression, size=st.st_size, mtime_ns=st.st_mtime_ns)


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
        elif path.exists():
            raise InputError(f"input {arg} is not a regular file ({_kind(path)}); give files, folders or globs "
                             f"(to read a stream, save it to a file first)")
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


def _kind(path: Path) -> str:
    if path.is_fifo():
        return "a FIFO"
    if path.is_char_device():
        return "a character device"
    if path.is_block_device():
        return "a block device"
    if path.is_socket():
        return "a socket"
    return "not a file or folder"


def _known(path: Path) -> bool:
    try:
        classify(path)
        return True
    except InputError:
        return False
