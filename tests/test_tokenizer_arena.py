"""WordPieceTokenizer.encode_arena (texts read in place from a window's UTF-8 arena) against
encode_batch (texts as str): the same ids, offsets, counts and uncertain flags on the shared
passages and on generated hostile strings, for every text, row subsets in any order, and with
prefixes; and WindowTokenizer.tokenize on a window that carries its arena, HF re-encoding included."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import read_jsonl_zst, shared_file
from unicode_strings import random_strings

engine = pytest.importorskip("ignite._engine")

from ignite.pipeline.tokenize import NATIVE, WindowTokenizer  # noqa: E402
from ignite.rows.status import BAD_JSON, MISSING_FIELD, OK  # noqa: E402
from ignite.rows.window import Window, utf8_arena  # noqa: E402

MAX_LENGTH = 128


@pytest.fixture(scope="module")
def tokenizer_json(model_dir: Path) -> Path:
    return model_dir / "tokenizer.json"


@pytest.fixture(scope="module")
def window_tokenizer(tokenizer_json: Path) -> WindowTokenizer:
    tok = WindowTokenizer(tokenizer_json, MAX_LENGTH)
    assert tok.path == NATIVE
    return tok


@pytest.fixture(scope="module")
def generated(tokenizer_json: Path) -> list[str]:
    vocab = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    words = sorted(w[2:] if w.startswith("##") else w for w in vocab if not w.startswith("["))
    return random_strings(24_000, seed=20261129, vocab=words)


def assert_same(native, texts: list[str], rows: np.ndarray | None, prefix: str, threads: int) -> None:  # type: ignore[no-untyped-def]
    text_bytes, offsets = utf8_arena(texts)
    got = native.encode_arena(text_bytes, offsets, rows, prefix, threads)
    picked = texts if rows is None else [texts[r] for r in rows]
    want = native.encode_batch(picked, prefix, threads)
    for name, g, w in zip(("ids", "offsets", "n_tokens", "uncertain"), got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w), f"{name} differ (prefix={prefix!r}, threads={threads})"


def _check_corpus(native, texts: list[str], seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    n = len(texts)
    subsets = [None, np.arange(n, dtype=np.int64), np.sort(rng.choice(n, n // 3, replace=False)),
               rng.integers(0, n, n // 5),  # any order, repeats allowed
               np.zeros(0, np.int64)]
    for rows in subsets:
        for prefix in ("", "query: ", "passage:", "[CLS] é "):
            assert_same(native, texts, rows, prefix, 0)
    assert_same(native, texts, subsets[2], "query: ", 1)
    assert_same(native, texts, None, "", 3)


@pytest.mark.slow
def test_arena_matches_encode_batch_on_passages(window_tokenizer: WindowTokenizer) -> None:
    texts = [r["text"] for r in read_jsonl_zst(shared_file("passages.jsonl.zst"), 20_000)]
    _check_corpus(window_tokenizer.native, texts, 1)


def test_arena_matches_encode_batch_on_generated_strings(window_tokenizer: WindowTokenizer,
                                                          generated: list[str]) -> None:
    assert len(generated) >= 20_000
    _check_corpus(window_tokenizer.native, generated, 2)


def test_arena_edge_cases(window_tokenizer: WindowTokenizer) -> None:
    native = window_tokenizer.native
    assert_same(native, [], None, "", 0)
    assert_same(native, [""], None, "", 0)
    assert_same(native, ["", "a", "", "b c"], np.array([3, 0, 0, 2]), "x ", 0)
    # Offsets need not start at 0 nor cover the whole arena: a window may be a slice of a chunk.
    text_bytes = np.frombuffer(b"xxhello worldyy", np.uint8)
    got = native.encode_arena(text_bytes, np.array([2, 7, 13], np.int64))
    want = native.encode_batch(["hello", " world"])
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_arena_refuses_spans_outside_it(window_tokenizer: WindowTokenizer) -> None:
    native = window_tokenizer.native
    text_bytes, offsets = utf8_arena(["one", "two"])
    with pytest.raises(ValueError, match="row 2 is outside the 2 texts"):
        native.encode_arena(text_bytes, offsets, np.array([0, 2]))
    with pytest.raises(ValueError, match="row -1"):
        native.encode_arena(text_bytes, offsets, np.array([-1]))
    with pytest.raises(ValueError, match="outside the arena's 6"):
        native.encode_arena(text_bytes, np.array([0, 3, 7], np.int64))
    with pytest.raises(ValueError, match=r"spans bytes \[3, 1\)"):
        native.encode_arena(text_bytes, np.array([0, 3, 1], np.int64))
    with pytest.raises(ValueError, match="n\\+1"):
        native.encode_arena(text_bytes, np.zeros(0, np.int64))


def _window(texts: list[str], status: list[int], with_arena: bool) -> Window:
    n = len(texts)
    # Bad records keep "" in texts; their arena bytes are junk the tokenizer must not read.
    kept = [t if s == OK else "" for t, s in zip(texts, status)]
    text_bytes, offsets = utf8_arena([t if s == OK else "\ufffd junk" for t, s in zip(texts, status)])
    return Window(index=0, start_row=0, file_index=0, texts=kept, ids=[None] * n, lines=np.arange(1, n + 1),
                  status=np.asarray(status, np.uint8), end_offset=0, text_bytes=text_bytes if with_arena else None,
                  text_offsets=offsets if with_arena else None)


@pytest.mark.parametrize("prefix", ["", "query: "])
def test_window_from_arena_equals_window_from_texts(tokenizer_json: Path, generated: list[str], prefix: str) -> None:
    """Through WindowTokenizer.tokenize: the arena path gives the str path's tokens, which are HF's
    exactly, uncertain rows (re-encoded by HF tokenizers from their decoded bytes) included."""
    from tokenizers import Tokenizer

    tok = WindowTokenizer(tokenizer_json, MAX_LENGTH, prefix)
    texts = generated[:6000]
    rng = np.random.default_rng(3)
    status = [OK if rng.random() > 0.05 else BAD_JSON for _ in texts]
    from_arena, from_texts = _window(texts, status, True), _window(texts, status, False)
    tok.tokenize(from_arena)
    tok.tokenize(from_texts)
    assert np.array_equal(from_arena.token_offsets, from_texts.token_offsets)
    assert np.array_equal(from_arena.token_ids, from_texts.token_ids)

    ok = [i for i, s in enumerate(status) if s == OK]
    text_bytes, offsets = utf8_arena(texts)
    _, _, _, uncertain = tok.native.encode_arena(text_bytes, offsets, np.array(ok), prefix)
    assert uncertain.sum() > 100  # the HF splice is exercised
    hf = Tokenizer.from_file(str(tokenizer_json))
    hf.no_padding()
    hf.enable_truncation(MAX_LENGTH)
    expected = hf.encode_batch([prefix + texts[i] for i in ok])
    got_offsets = from_arena.token_offsets
    for i, e in zip(ok, expected):
        assert from_arena.token_ids[got_offsets[i]:got_offsets[i + 1]].tolist() == e.ids, repr(texts[i])
    bad = [i for i, s in enumerate(status) if s != OK]
    assert all(got_offsets[i] == got_offsets[i + 1] for i in bad)


def test_window_arena_on_the_hf_path_uses_texts(tokenizer_json: Path) -> None:
    tok = WindowTokenizer(tokenizer_json, MAX_LENGTH, native=False)
    texts = ["a river", "stones and bread", "tide"]
    window = _window(texts, [OK, MISSING_FIELD, OK], True)
    tok.tokenize(window)
    want, _ = tok.encode(["a river", "tide"])
    assert np.array_equal(window.token_ids, want)
