"""Parity of the native WordPiece tokenizer with HF `tokenizers`: the same input_ids (after
truncation) and the same untruncated length, on the shared corpora, on 120,000 generated hostile
strings, and on tokenizer.json variants covering the other normalizer branches.

The native tokenizer flags texts holding a code point whose Unicode properties differ between
Unicode versions ("uncertain"); WindowTokenizer re-encodes those with HF. Rows not flagged must
match HF as the native tokenizer gives them; every row must match through WindowTokenizer."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import read_jsonl_zst, shared_file
from unicode_strings import random_strings

engine = pytest.importorskip("ignite._engine")
tokenizers = pytest.importorskip("tokenizers")

from ignite.pipeline.tokenize import NATIVE, WindowTokenizer  # noqa: E402

MAX_LENGTH = 256


def hf_tokenizer(path: Path, max_length: int | None):  # type: ignore[no-untyped-def]
    tok = tokenizers.Tokenizer.from_file(str(path))
    tok.no_padding()
    if max_length is None:
        tok.no_truncation()
    else:
        tok.enable_truncation(max_length)
    return tok


def assert_parity(path: Path, texts: list[str], max_length: int = MAX_LENGTH, prefix: str = "",
                  max_uncertain: float = 0.0, label: str = "") -> dict[str, int]:
    """Compare native (raw and through WindowTokenizer) with HF on `texts`; fail listing the
    first mismatches with the string's repr and both id lists."""
    hf = hf_tokenizer(path, max_length)
    prefixed = [prefix + t for t in texts] if prefix else texts
    expected = [e.ids for e in hf.encode_batch(prefixed)]
    exp_len = np.array([len(e) for e in expected], dtype=np.int64)
    # Untruncated lengths: only a text at max_length can have been cut.
    exp_full = exp_len.copy()
    cut = np.flatnonzero(exp_len >= max_length)
    if len(cut):
        full = hf_tokenizer(path, None).encode_batch([prefixed[i] for i in cut])
        exp_full[cut] = [len(e.ids) for e in full]

    window = WindowTokenizer(path, max_length, prefix)
    assert window.path == NATIVE
    w_ids, w_offsets, w_counts = window.encode_counts(texts)
    # The native tokenizer as WindowTokenizer set it up (version-dependent code points that
    # agree with HF trusted).
    ids, offsets, n_tokens, uncertain = window.native.encode_batch(texts, prefix, 0)
    assert ids.dtype == np.int32 and offsets.dtype == np.int64 and n_tokens.dtype == np.int64
    assert len(offsets) == len(texts) + 1 and len(n_tokens) == len(texts) == len(uncertain)

    mismatches: list[str] = []
    raw_differs_when_uncertain = 0
    for i, exp in enumerate(expected):
        got = ids[offsets[i]:offsets[i + 1]].tolist()
        if uncertain[i]:
            raw_differs_when_uncertain += got != exp
        elif got != exp or n_tokens[i] != exp_full[i]:
            mismatches.append(f"native  {texts[i]!r}\n  native {got} (n={n_tokens[i]})\n"
                              f"  hf     {exp} (n={exp_full[i]})")
        w_got = w_ids[w_offsets[i]:w_offsets[i + 1]].tolist()
        if w_got != exp or w_counts[i] != exp_full[i]:
            mismatches.append(f"window  {texts[i]!r}\n  window {w_got} (n={w_counts[i]})\n"
                              f"  hf     {exp} (n={exp_full[i]})")
        if len(mismatches) >= 20:
            break
    assert not mismatches, f"{label}: {len(mismatches)}+ mismatches:\n" + "\n".join(mismatches)
    stats = {"texts": len(texts), "uncertain": int(uncertain.sum()),
             "uncertain_and_raw_native_differs": raw_differs_when_uncertain}
    print(f"\n{label}: {stats}")
    assert stats["uncertain"] <= max_uncertain * len(texts), stats
    return stats


@pytest.fixture(scope="module")
def tokenizer_json(model_dir: Path) -> Path:
    return model_dir / "tokenizer.json"


@pytest.fixture(scope="module")
def vocab_words(tokenizer_json: Path) -> list[str]:
    vocab = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    return sorted(w[2:] if w.startswith("##") else w for w in vocab if not w.startswith("["))


@pytest.fixture(scope="module")
def generated(vocab_words: list[str]) -> list[str]:
    return random_strings(120_000, seed=20240611, vocab=vocab_words)


def variant(tmp_path: Path, tokenizer_json: Path, name: str, **changes: object) -> Path:
    """A copy of tokenizer.json with normalizer options (or other top-level parts) changed."""
    doc = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if key in ("clean_text", "handle_chinese_chars", "strip_accents", "lowercase"):
            doc["normalizer"][key] = value
        else:
            doc[key] = value
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["passages.jsonl.zst", "multilingual.jsonl.zst"])
def test_corpus_parity(corpus: str, tokenizer_json: Path) -> None:
    texts = [r["text"] for r in read_jsonl_zst(shared_file(corpus))]
    # Real prose hardly ever holds a code point whose properties changed across Unicode versions.
    assert_parity(tokenizer_json, texts, max_uncertain=0.001, label=corpus)


@pytest.mark.slow
def test_generated_parity(tokenizer_json: Path, generated: list[str]) -> None:
    assert len(generated) >= 100_000
    # The wild two-fifths of the strings draw random code points from the whole range, often
    # unassigned, so many of them are uncertain; the others hardly ever are.
    assert_parity(tokenizer_json, generated, max_uncertain=0.4, label="generated")


@pytest.mark.slow
@pytest.mark.parametrize("options", [
    {"lowercase": False, "strip_accents": True},
    {"lowercase": False, "strip_accents": None},
    {"lowercase": True, "strip_accents": False},
    {"clean_text": False, "handle_chinese_chars": False},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_normalizer_variants(tmp_path: Path, tokenizer_json: Path, generated: list[str],
                             options: dict[str, object]) -> None:
    path = variant(tmp_path, tokenizer_json, "variant", **options)
    assert_parity(path, generated[:30_000], max_uncertain=0.4, label=str(options))


def test_bert_processing_and_prefix(tmp_path: Path, tokenizer_json: Path, generated: list[str]) -> None:
    path = variant(tmp_path, tokenizer_json, "bertproc",
                   post_processor={"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]})
    assert_parity(path, generated[:5000], prefix="query: ", max_uncertain=0.4, label="BertProcessing+prefix")


@pytest.mark.parametrize("max_length", [1, 2, 3, 4, 7, 16, 512])
def test_truncation_lengths(tokenizer_json: Path, generated: list[str], max_length: int) -> None:
    assert_parity(tokenizer_json, generated[:3000], max_length=max_length, max_uncertain=0.4,
                  label=f"max_length={max_length}")


def test_fast_path_edges(tokenizer_json: Path, vocab_words: list[str]) -> None:
    """The cases the native fast paths treat apart: vocabulary pieces around the 8-byte key head
    the lookup compares in a register (7 to 18 bytes), with bytes after them that must not count;
    ASCII runs right after non-ASCII text, where a dropped control must not break a run of
    combining marks; words on both sides of max_input_chars_per_word and of the 256 bytes the
    model copies on the stack; [UNK] words among good ones; added tokens in mid-word."""
    by_len: dict[int, list[str]] = {}
    for w in vocab_words:
        by_len.setdefault(len(w.encode()), []).append(w)
    pieces = [w for n in range(7, 19) for w in by_len.get(n, [])[:6]]
    texts: list[str] = []
    for w in pieces:
        texts += [w, w.upper(), w + "s", w + "x", w[:-1], w + w, w + "é", "é" + w, f"{w}.{w}", w[:8] + "\u0301" + w[8:]]
    marks = ["e\u0301\x01\u0302", "a\u0308\x00\u0323b", "o\u0323\x7f\u0302 x", "\u00e9\x01\u0301a",
             "A\u030a\u0301\tB", "\u4e2dabc\u0301", "abc\u4e2d\u0301def", "x\u200b\u0301y"]
    long_words = ["a" * 99, "a" * 100, "a" * 101, "\u00e9" * 100, "\u00e9" * 101, "\u0436" * 100,
                  "\u0436" * 129, "\U0001d400" * 64, "\U0001d400" * 65, "ab" * 50, "ab" * 130,
                  "x" * 255 + " y", "\u0436" * 60 + "\U0001d400" * 20, "\U0001F600" * 70]
    unk = ["hello \u2603\u2603 world", "caf\u00e9 \U0001d400\U0001d401 tea", "\x01\x02\x03", "a\x00b",
           "[MASK]hello", "hel[MASK]lo", "un[SEP]affable", "end mid-wor", "trailing ", " "]
    texts += marks + long_words + unk + [" ".join(texts[i:i + 7]) for i in range(0, len(texts), 7)]
    assert_parity(tokenizer_json, texts, max_uncertain=0.4, label="fast-path edges")
    assert_parity(tokenizer_json, texts, max_length=8, max_uncertain=0.4, label="fast-path edges, max_length=8")
