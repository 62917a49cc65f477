"""`ignite tokenize` on the embedding path: same ids as HF tokenizers, lengths before truncation."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from tokenizers import Tokenizer

from conftest import run_cli


def test_tokenize_matches_hf_and_reports_truncation(tmp_path: Path, model_dir: Path) -> None:
    texts = ["short one", "Ein deutscher Satz mit Umlauten: Größe, Übermaß.", "日本語の文章です。" * 5,
             " ".join(["word"] * 60), "café naïve façade"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts))
                   + '{"id": "bad", "body": 1}\n')
    out = tmp_path / "tok.parquet"
    result = run_cli("tokenize", "--input", src, "--output", out, "--id-field", "id", "--max-length", "16")
    assert result.returncode == 0, result.stderr
    assert "p50" in result.stderr and "native-wordpiece" in result.stderr
    rows = pq.read_table(out).to_pylist()
    hf = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf.no_padding()
    full = hf.encode_batch(texts)
    hf.enable_truncation(16)
    cut = hf.encode_batch(texts)
    for row, f, c in zip(rows, full, cut):
        assert row["input_ids"] == c.ids
        assert row["n_tokens"] == len(f.ids) and row["truncated"] == (len(f.ids) > 16)
    assert rows[-1] == {"id": "bad", "n_tokens": 0, "truncated": False, "input_ids": [], "status": "missing_field"}
