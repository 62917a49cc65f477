"""Row i of the output is record i of the input, whatever is wrong with some records."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import zstandard

from conftest import run_cli

MESSY = [
    '{"id": "a", "text": "The first record is fine."}',
    "",
    '{"id": "b", "body": "this record has no text field"}',
    '{"id": "c", "text": "Third one, after a blank line and a record without text."',
    '{"id": "d", "text": 42}',
    "   ",
    '{"id": "e", "text": "Caf\\u00e9 au lait \\ud83d\\ude00 with an escaped emoji."}',
    '{"id": "f", "text": null}',
    '{"id": "g", "text": "Last one, with no newline at the end."}',
]
EXPECTED = [("a", "ok", 1), ("b", "missing_field", 3), ("c", "bad_json", 4), ("d", "field_not_string", 5),
            ("e", "ok", 7), ("f", "field_null", 8), ("g", "ok", 9)]


def test_bad_records_keep_their_rows(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "messy.jsonl"
    src.write_text("\n".join(MESSY))
    out = tmp_path / "emb.npy"
    errors = tmp_path / "errors.jsonl"
    result = run_cli("embed", "--input", src, "--output", out, "--id-field", "id", "--errors", errors,
                     "--dtype", "fp32", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    emb = np.load(out)
    meta = pq.read_table(out.with_name("emb.ids.parquet")).to_pylist()
    assert emb.shape[0] == len(EXPECTED) == len(meta)
    for row, (ident, status, line) in enumerate(EXPECTED):
        # A bad JSON line has no readable id; every other record keeps its own.
        assert meta[row]["id"] == (None if status == "bad_json" else ident)
        assert (meta[row]["status"], meta[row]["line"], meta[row]["row"]) == (status, line, row)
        norm = float(np.linalg.norm(emb[row]))
        assert (abs(norm - 1) < 1e-3) if status == "ok" else norm == 0.0, (row, norm)
    for status, line in (("missing_field", 3), ("bad_json", 4), ("field_not_string", 5)):
        assert f"messy.jsonl:{line}: {status}" in result.stderr
    assert "4 failed" in result.stderr
    logged = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [(e["line"], e["reason"]) for e in logged] == [(3, "missing_field"), (4, "bad_json"),
                                                          (5, "field_not_string"), (8, "field_null")]


def test_many_files_in_order_txt_gz_zst(tmp_path: Path, cache_dir: Path) -> None:
    """Rows follow the order of the inputs; .txt keeps empty lines as records; compressed files
    read like plain ones; CRLF and a BOM do not leak into the text."""
    (tmp_path / "in").mkdir()
    a = tmp_path / "in" / "a.txt.gz"
    with gzip.open(a, "wt", encoding="utf-8") as f:
        f.write("\ufeffalpha line\r\n\r\ngamma line\r\n")
    b = tmp_path / "in" / "b.jsonl.zst"
    b.write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "alpha line"}\n{"text": "delta"}\n'))
    out = tmp_path / "out.npy"
    result = run_cli("embed", "--input", tmp_path / "in", "--output", out, "--dtype", "fp32", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    emb = np.load(out)
    meta = pq.read_table(tmp_path / "out.ids.parquet").to_pylist()
    assert [(Path(m["file"]).name, m["line"], m["status"]) for m in meta] == [
        ("a.txt.gz", 1, "ok"), ("a.txt.gz", 2, "ok"), ("a.txt.gz", 3, "ok"), ("b.jsonl.zst", 1, "ok"),
        ("b.jsonl.zst", 2, "ok")]
    assert [m["id"] for m in meta] == [0, 1, 2, 3, 4]
    # The BOM and CR were stripped: "alpha line" from the txt equals the one from the jsonl.
    assert float(emb[0] @ emb[3]) > 0.99999
