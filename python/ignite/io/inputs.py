"""Expand `--input` arguments (files, directories, globs) into an ordered list of input files
with a known format and compression."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
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
    # The resolved path, as the listing found it ("" when built elsewhere: resolved on demand).
    real: str = field(default="", compare=False, repr=False)

    @property
    def resolved(self) -> str:
        return self.real or os.path.realpath(self.path)

    @property
    def end_line(self) -> int | None:
        return None if self.line_count is None else self.first_line + self.line_count


    def change(self) -> str | None:
        """How the file differs now from when it was listed (size, modification time, gone), in
        words; None when it looks the same."""
        try:
            st = os.stat(self.path)  # not Path.stat: this runs for every input file, twice a run
        except OSError as exc:
            return f"it can no longer be read ({exc.strerror})"
        if st.st_size != self.size:
            grew = "grew" if st.st_size > self.size else "shrank"
            return f"it {grew} from {self.size:,} to {st.st_size:,} bytes"
        if st.st_mtime_ns != self.mtime_ns:
            return "it was rewritten (same size, new modification time)"
        return None


def _suffixes(name: str) -> list[str]:
    """Path(name).suffixes from the name alone: no Path per file a folder lists."""
    if name.endswith("."):
        return []
    return ["." + s for s in name.lstrip(".").split(".")[1:]]


def _format(name: str, where: Path | str) -> tuple[str, str | None]:
    """(format, compression) of a file named `name`; InputError naming `where` for an unknown
    extension."""
    suffixes = [s.lower() for s in _suffixes(name)]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    fmt_suffix = suffixes[-2] if compression and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    fmt = FORMATS.get(fmt_suffix)
    if fmt is None:
        known = ", ".join(sorted(FORMATS)) + " (optionally + .zst or .gz)"
        raise InputError(f"{where}: unknown input extension {''.join(_suffixes(name)) or '(none)'!r}; "
                         f"rename it to one of {known}")
    if fmt == "parquet" and compression:
        raise InputError(f"{where}: parquet compresses internally; drop the {suffixes[-1]} extension")
    return fmt, compression


def classify(path: Path, kind: tuple[str, str | None] | None = None, real: str = "") -> InputFile:
    """`path` as an InputFile; `kind`: its (format, compression), when already known; `real`: its
    resolved path, when already known."""
    fmt, compression = kind or _format(path.name, path)
    st = os.stat(path)
    return InputFile(path=path, format=fmt, compression=compression, size=st.st_size, mtime_ns=st.st_mtime_ns,
                     real=real)


def expand_inputs(args: list[str]) -> list[InputFile]:
    """Files in the order given; a directory contributes its known files sorted by name; a glob
    its matches sorted by name. Duplicates (the same resolved path) are kept once."""
    found: list[tuple[Path, str, tuple[str, str | None] | None]] = []  # file, resolved path, known kind
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            in_folder = _folder_files(path)
            if not in_folder:
                raise InputError(f"input folder {arg} has no .jsonl, .txt or .parquet files (plain, .zst or .gz)")
            found.extend(in_folder)
        elif path.is_file():
            found.append((path, os.path.realpath(path), None))
        elif path.exists():
            raise InputError(f"input {arg} is not a regular file ({_kind(path)}); give files, folders or globs "
                             f"(to read a stream, save it to a file first)")
        elif glob.has_magic(arg):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"input pattern {arg!r} matches no file; check the pattern and quote it")
            found.extend((p, os.path.realpath(p), None) for p in matches)
        else:
            raise InputError(f"input file {arg} does not exist; check the path")
    seen: set[str] = set()
    result = []
    for path, real, kind in found:
        if real not in seen:
            seen.add(real)
            result.append(classify(path, kind, real))
    return result


def _folder_files(root: Path) -> list[tuple[Path, str, tuple[str, str | None]]]:
    """The known files under `root`, each with its resolved path and kind, in the order and with the
    rules of sorted(f for f in root.rglob("*") if f.is_file()) (symlinked folders not followed).
    Cheaper per file: one os.scandir a folder, the extension checked on the name, the resolved
    path the folder's (resolved once) plus the name unless the file is a symlink."""
    found: list[tuple[tuple[str, ...], str, tuple[str, str | None]]] = []  # parts below root, resolved, kind

    def walk(folder: str, parts: tuple[str, ...], real: str) -> None:
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except PermissionError:  # skipped, as rglob does
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                walk(entry.path, (*parts, entry.name), os.path.join(real, entry.name))
            elif entry.is_file() and (kind := _known(entry.name)) is not None:
                resolved = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real, entry.name)
                found.append(((*parts, entry.name), resolved, kind))

    walk(str(root), (), os.path.realpath(root))
    found.sort(key=lambda item: item[0])
    return [(root.joinpath(*parts), real, kind) for parts, real, kind in found]


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


def _known(name: str) -> tuple[str, str | None] | None:
    """(format, compression) of a file named `name`; None when it is no input ignite reads."""
    try:
        return _format(name, name)
    except InputError:
        return None
