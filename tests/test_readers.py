"""The reader on its own: line framing, compression, damaged archives."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
import zstandard

from ignite.errors import InputError
from ignite.io import readers
from ignite.io.inputs import expand_inputs
from ignite.io.readers import RecordReader
from ignite.rows.status import status_names


def _read(path: Path, field: str = "text", window: int = 1000) -> tuple[list, list, list, RecordReader]:
    reader = RecordReader(expand_inputs([str(path)])[0], field, None, window)
    texts, lines, status = [], [], []
    for w in reader.windows():
        texts += w.texts
        lines += w.lines.tolist()
        status += status_names(w.status).tolist()
    return texts, lines, status, reader


def test_txt_framing(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbfone\r\ntwo\n\nfour\r\nfive")
    texts, lines, status, _ = _read(p)
    assert texts == ["one", "two", "", "four", "five"]
    assert lines == [1, 2, 3, 4, 5] and set(status) == {"ok"}


def test_invalid_utf8_keeps_its_row(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"good\nbad \xff\xfe\nalso good\n")
    texts, _, status, _ = _read(p)
    assert status == ["ok", "invalid_utf8", "ok"] and texts[2] == "also good"
    j = tmp_path / "b.jsonl"
    j.write_bytes(b'{"text": "ok"}\n{"text": "bad \xff"}\n')
    assert _read(j)[2] == ["ok", "invalid_utf8"]


def test_lines_longer_than_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "READ_CHUNK", 7)
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 40)
    p = tmp_path / "a.jsonl"
    long_ok = '{"text": "' + "x" * 20 + '"}'
    too_long = '{"text": "' + "y" * 100 + '"}'
    p.write_text("\n".join([long_ok, too_long, long_ok, too_long]))
    texts, lines, status, _ = _read(p)
    assert status == ["ok", "line_too_long", "ok", "line_too_long"]
    assert lines == [1, 2, 3, 4] and texts[2] == "x" * 20


def test_nested_field_and_windows(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text("".join(f'{{"doc": {{"body": "t{i}"}}}}\n' for i in range(25)))
    reader = RecordReader(expand_inputs([str(p)])[0], "doc.body", None, 10)
    sizes = [len(w.texts) for w in reader.windows()]
    assert sizes == [10, 10, 5]
    assert _read(p, "doc.body")[0][-1] == "t24"


@pytest.mark.parametrize("kind", ["zst", "gz"])
def test_damaged_archive_stops_the_file_with_its_line(tmp_path: Path, kind: str) -> None:
    payload = "".join(f'{{"text": "record {i}"}}\n' for i in range(20000)).encode()
    p = tmp_path / f"a.jsonl.{kind}"
    blob = zstandard.ZstdCompressor().compress(payload) if kind == "zst" else gzip.compress(payload)
    p.write_bytes(blob[: len(blob) // 2] if kind == "zst" else blob + b"garbage tail")
    texts, lines, status, reader = _read(p)
    assert reader.damage is not None and str(p) in str(reader.damage)
    # Everything decoded before the damage is kept, in order.
    assert lines == list(range(1, len(texts) + 1))
    assert 0 < len(texts) < 20000 if kind == "zst" else len(texts) == 20000
    assert set(status) == {"ok"}


def test_empty_and_newline_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    newlines = tmp_path / "n.jsonl"
    newlines.write_text("\n\n\n")
    assert _read(empty)[0] == [] and _read(newlines)[0] == []


def test_parquet_nested(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"meta": pa.array([{"body": "a"}, {"body": None}, {"body": "c"}]), "key": [10, 11, 12]})
    p = tmp_path / "t.parquet"
    pq.write_table(table, p)
    reader = RecordReader(expand_inputs([str(p)])[0], "meta.body", "key", 2)
    windows = list(reader.windows())
    assert [w.texts for w in windows] == [["a", ""], ["c"]]
    assert [status_names(w.status).tolist() for w in windows] == [["ok", "field_null"], ["ok"]]
    assert [w.ids for w in windows] == [["10", "11"], ["12"]]
    with pytest.raises(InputError, match="no column 'nope'"):
        list(RecordReader(expand_inputs([str(p)])[0], "nope", None, 2).windows())


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI insists: a user's build may lack zstd/simdjson headers")
def test_ci_builds_the_native_reader() -> None:
    # .ci/run installs the reader's libraries; a silent fallback to the Python reader would
    # leave the native path untested.
    assert readers.native_reader_available(), "ignite._engine built without the native reader in CI"
