"""WindowTokenizer and ignite._engine.WordPieceTokenizer: which path is taken, fallback to HF
tokenizers for unsupported tokenizer.json, the encode_batch interface, and the re-encoding of
uncertain texts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

engine = pytest.importorskip("ignite._engine")
tokenizers = pytest.importorskip("tokenizers")

from ignite.pipeline.tokenize import HF, NATIVE, WindowTokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer_json(model_dir: Path) -> Path:
    return model_dir / "tokenizer.json"


def hf_ids(path: Path, texts: list[str], max_length: int) -> list[list[int]]:
    tok = tokenizers.Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return [e.ids for e in tok.encode_batch(texts)]


def test_native_path_and_interface(tokenizer_json: Path) -> None:
    tok = WindowTokenizer(tokenizer_json, 128, "query: ")
    assert tok.path == NATIVE and tok.native is not None and tok.pad_id == 0
    texts = ["Hello world!", "", "naïve café 北京 😀", "x " * 500]
    ids, offsets = tok.encode(texts)
    assert ids.dtype == np.int32 and offsets.dtype == np.int64 and len(offsets) == len(texts) + 1
    assert [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(len(texts))] == \
        hf_ids(tokenizer_json, ["query: " + t for t in texts], 128)
    _, _, counts = tok.encode_counts(texts)
    assert counts[3] == 2 + 2 + 500 and counts[1] == 2 + 2


def test_encode_batch_arrays(tokenizer_json: Path) -> None:
    native = engine.WordPieceTokenizer(str(tokenizer_json), 8)
    ids, offsets, counts, uncertain = native.encode_batch(["a b c d e f g h i j", "a"], "", 1)
    assert offsets.tolist() == [0, 8, 11] and counts.tolist() == [12, 3]
    assert uncertain.dtype == np.bool_ and not uncertain.any()
    assert native.max_length == 8 and native.unk_id == 100 and native.special_tokens_added == 2
    assert native.words("Héllo, World") == ["hello", ",", "world"]
    with pytest.raises(TypeError):
        native.encode_batch(["ok", b"bytes"])  # type: ignore[list-item]
    with pytest.raises(UnicodeEncodeError):  # lone surrogates never reach the native code
        native.encode_batch(["\ud800"])
    empty = native.encode_batch([])
    assert len(empty[0]) == 0 and empty[1].tolist() == [0]


def test_threads_agree(tokenizer_json: Path) -> None:
    native = engine.WordPieceTokenizer(str(tokenizer_json), 64)
    texts = [f"record {i} " + "lorem ipsum dolor " * (i % 17) for i in range(20000)]
    one = native.encode_batch(texts, "", 1)
    many = native.encode_batch(texts, "", 4)
    for a, b in zip(one, many):
        assert np.array_equal(a, b)


def variant(tmp_path: Path, tokenizer_json: Path, **changes: object) -> Path:
    doc = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    doc.update(changes)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("changes", [
    {"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]}},
    {"pre_tokenizer": {"type": "Whitespace"}},
    {"post_processor": {"type": "RobertaProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101],
                        "trim_offsets": True, "add_prefix_space": False}},
], ids=["normalizer", "pre_tokenizer", "post_processor"])
def test_unsupported_falls_back_to_hf(tmp_path: Path, tokenizer_json: Path, changes: dict) -> None:
    path = variant(tmp_path, tokenizer_json, **changes)
    with pytest.raises(ValueError, match="not a BERT WordPiece pipeline"):
        engine.WordPieceTokenizer(str(path), 64)
    tok = WindowTokenizer(path, 64)
    assert tok.path == HF and tok.native is None and tok.native_refusal
    texts = ["Hello, World!", "naïve café"]
    ids, offsets = tok.encode(texts)
    assert [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(2)] == hf_ids(path, texts, 64)


def test_bpe_model_falls_back(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    bpe = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "ab": 2, "<unk>": 3}, merges=[("a", "b")], unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "bpe.json"
    bpe.save(str(path))
    tok = WindowTokenizer(path, 16)
    assert tok.path == HF
    ids, offsets = tok.encode(["ab a b"])
    assert ids.tolist() == [2, 0, 1] and offsets.tolist() == [0, 3]


def test_uncertain_texts_are_re_encoded(tokenizer_json: Path) -> None:
    # U+111C9 was punctuation in HF's Unicode version and is a mark in ours; U+0378 is unassigned.
    texts = ["plain text", "x\U000111c9y", "a\u0378b", "more plain text", "\u00adsoft\u200bhyphen"]
    tok = WindowTokenizer(tokenizer_json, 32)
    _, _, _, uncertain = tok.native.encode_batch(texts)
    assert uncertain.tolist() == [False, True, True, False, False]  # U+00AD, U+200B checked and trusted
    ids, offsets, counts = tok.encode_counts(texts)
    expected = hf_ids(tokenizer_json, texts, 32)
    assert [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(len(texts))] == expected
    assert counts.tolist() == [len(e) for e in expected]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        engine.WordPieceTokenizer(str(tmp_path / "missing.json"), 16)
