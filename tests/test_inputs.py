"""expand_inputs lists a folder as sorted(rglob) would, each file once (by resolved path)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ignite.errors import InputError
from ignite.io.inputs import expand_inputs


def _tree(root: Path) -> None:
    for name in ("a/b/x.jsonl", "a-b/y.JSONL.ZST", ".h/z.txt", ".dot.jsonl", "a/u.ndjson.gz", "s.parquet",
                 "q.", "r.parquet.gz", "t.csv"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}\n")
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "o.jsonl").write_text("{}\n")
    (root / "linked").symlink_to(outside)  # a symlinked folder: not followed
    (root / "link.jsonl").symlink_to(outside / "o.jsonl")
    (root / "a" / "dup.jsonl").symlink_to(root / "a" / "b" / "x.jsonl")  # the same file twice: listed once


def test_folder_order_kinds_and_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "in"
    _tree(root)
    files = expand_inputs([str(root), str(tmp_path / "outside"), str(root / "a" / "b" / "x.jsonl")])
    # Sorted by path component ("a" before "a-b"), unknown extensions skipped, resolved duplicates dropped.
    assert [(str(f.path.relative_to(tmp_path)), f.format, f.compression) for f in files] == [
        ("in/.dot.jsonl", "jsonl", None), ("in/.h/z.txt", "txt", None), ("in/a/b/x.jsonl", "jsonl", None),
        ("in/a/u.ndjson.gz", "jsonl", "gzip"), ("in/a-b/y.JSONL.ZST", "jsonl", "zstd"),
        ("in/link.jsonl", "jsonl", None), ("in/s.parquet", "parquet", None)]
    assert all(f.size == 3 and f.mtime_ns > 0 for f in files)


@pytest.mark.parametrize(("name", "message"), [("t.csv", "unknown input extension '.csv'"),
                                               ("r.parquet.gz", "parquet compresses internally"),
                                               ("q.", "unknown input extension '(none)'")])
def test_named_file_of_unknown_kind(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / name).write_text("{}\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand_inputs([str(tmp_path / name)])
