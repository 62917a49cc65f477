"""Image inputs: `--input` arguments (files, folders, globs) listed as loose image files, WebDataset
`.tar` shards, or Parquet/JSONL files whose `--image-field` names or holds the image. Each is an
InputFile (format "image", "tar", "jsonl" or "parquet"), fingerprinted and resumed as text inputs
are; a loose image keeps its id, its path relative to the argument that named it."""
from __future__ import annotations

import glob
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from ignite.errors import InputError
from ignite.io.inputs import InputFile, classify

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
TAR_EXTENSIONS = (".tar",)
TABLE_FORMATS = ("jsonl", "parquet")


@dataclass(frozen=True)
class ImageInputs:
    files: list[InputFile]
    names: list[str | None]  # per file: the id of a loose image; None for a tar or a table


def _kind(path: Path) -> str | None:
    return _kind_of_name(path.name)


def _kind_of_name(name: str) -> str | None:
    """"image", "tar" or None, from the extension of a file's name (no Path made)."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in TAR_EXTENSIONS:
        return "tar"
    return None


def _holds_images(folder: Path) -> bool:
    """Whether any file under `folder` is an image or a tar shard, found by name (a stat only for
    a name that matches), symlinked folders not followed, as rglob; stops at the first."""
    for parent, _, names in os.walk(folder):
        if any(_kind_of_name(name) and os.path.isfile(os.path.join(parent, name)) for name in names):
            return True
    return False


def wants_images(args: list[str], image_field: str | None) -> bool:
    """Whether `--input` names images (loose files, folders of them, tar shards): an image run.
    With --image-field every run is one."""
    if image_field is not None:
        return True
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            if _holds_images(path):
                return True
        elif path.is_file():
            if _kind(path):
                return True
        elif glob.has_magic(arg) and any(_kind(Path(p)) for p in glob.glob(str(path), recursive=True)):
            return True
    return False


def _image_file(path: Path, kind: str) -> InputFile:
    st = path.stat()
    return InputFile(path=path, format=kind, compression=None, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _glob_root(arg: str) -> Path:
    """The folder a glob's matches are named relative to: its part before the first wildcard."""
    root = list(itertools.takewhile(lambda part: not glob.has_magic(part), Path(arg).expanduser().parts))
    return Path(*root) if root else Path(".")


def expand_image_inputs(args: list[str], image_field: str | None) -> ImageInputs:
    """Files in the order given; a folder contributes its images and tars, recursively, sorted by
    path; a glob its matches sorted. With --image-field, .jsonl and .parquet files are tables of
    images. Duplicates are kept once."""
    found: list[tuple[Path, str, str | None]] = []  # path, kind, id of a loose image

    def add(path: Path, root: Path | None, arg: str) -> None:
        kind = _kind(path)
        if kind is None and image_field is not None:
            try:
                fmt = classify(path).format
            except InputError:
                fmt = None
            kind = fmt if fmt in TABLE_FORMATS else None
        if kind is None:
            raise InputError(f"input {path} is not an image ({', '.join(IMAGE_EXTENSIONS)}), a .tar shard"
                             + (", .jsonl or .parquet" if image_field else " (give --image-field for .jsonl/.parquet "
                                                                             "tables of images)"))
        name = (path.relative_to(root).as_posix() if root is not None else arg) if kind == "image" else None
        found.append((path, kind, name))

    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and (_kind(p) or (
                image_field is not None and p.suffix.lower() in (".jsonl", ".parquet"))))
            if not inside:
                raise InputError(f"input folder {arg} has no images ({', '.join(IMAGE_EXTENSIONS)}) or .tar shards")
            for p in inside:
                add(p, path, arg)
        elif path.is_file():
            add(path, None, arg)
        elif path.exists():
            raise InputError(f"input {arg} is not a regular file; give files, folders or globs")
        elif glob.has_magic(arg):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"input pattern {arg!r} matches no file; check the pattern and quote it")
            for p in matches:
                add(p, _glob_root(arg), arg)
        else:
            raise InputError(f"input file {arg} does not exist; check the path")
    seen: set[Path] = set()
    files, names = [], []
    for path, kind, name in found:
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        files.append(classify(path) if kind in TABLE_FORMATS else _image_file(path, kind))
        names.append(name)
    return ImageInputs(files, names)
