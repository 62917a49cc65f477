"""Tokenizer stage: a window's texts to flat int32 token ids plus offsets, truncated to the
model's max length.

Two paths, and `WindowTokenizer.path` says which one a run took:
- "native-wordpiece": `ignite._engine.WordPieceTokenizer`, when tokenizer.json is the BERT
  WordPiece pipeline (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP]). It gives the
  ids HF `tokenizers` gives. HF's Unicode tables are of other Unicode versions than ours (from
  Python's unicodedata), so the native tokenizer flags texts holding a code point whose
  relevant properties changed between versions. At start-up each such assigned code point is
  checked alone against the installed HF `tokenizers` (normaliser and pre-tokenizer) and
  trusted where they agree; texts still flagged (unassigned or disagreeing code points, rare in
  real text) are re-encoded with HF `tokenizers`, so the output is HF's exactly.
- "hf-tokenizers": HF `tokenizers` batch-wise for every other tokenizer type.

A window whose reader kept its texts' UTF-8 arena (Window.text_bytes/text_offsets) is tokenized
straight from it on the native path, without a str per record.
"""
from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from ignite.errors import ModelError
from ignite.rows.window import Window

log = logging.getLogger(__name__)

NATIVE = "native-wordpiece"
HF = "hf-tokenizers"


class WindowTokenizer:
    def __init__(self, tokenizer_json: Path, max_length: int, prefix: str = "", threads: int = 0,
                 native: bool = True) -> None:
        """`threads`: native tokenizer threads (0: all cores). `native=False` forces HF tokenizers."""
        self.prefix = prefix
        self.max_length = max_length
        self.threads = threads
        self.native_refusal: str | None = None  # why the native path was not taken
        self._native = None
        self._hf = None
        self._hf_full = None
        if native:
            try:
                from ignite._engine import WordPieceTokenizer
            except ImportError as exc:  # a build without the tokenizer
                self.native_refusal = f"native module unavailable: {exc}"
            else:
                try:
                    self._native = WordPieceTokenizer(str(tokenizer_json), max_length)
                except ValueError as exc:  # unsupported pipeline: HF tokenizers takes it
                    self.native_refusal = str(exc)
                except OSError as exc:
                    raise ModelError(f"cannot load {tokenizer_json}: {exc}") from None
        else:
            self.native_refusal = "native tokenizer disabled"
        self.path = NATIVE if self._native is not None else HF
        self.pad_id = self._native.pad_id if self._native is not None else _pad_id(tokenizer_json)
        self._json = tokenizer_json
        self.trusted_code_points = 0
        if self._native is not None:
            self.trusted_code_points = _trust_checked_code_points(self._native, self._load_hf())
        else:
            log.debug("tokenizer: %s (%s)", HF, self.native_refusal)
            self._load_hf()

    @property
    def native(self):  # type: ignore[no-untyped-def]
        """The native tokenizer (ignite._engine.WordPieceTokenizer), or None on the HF path."""
        return self._native

    def _load_hf(self):  # type: ignore[no-untyped-def]
        """HF tokenizers, set up as the native tokenizer is: no padding, truncation to max_length."""
        if self._hf is None:
            from tokenizers import Tokenizer

            try:
                self._hf = Tokenizer.from_file(str(self._json))
            except Exception as exc:
                raise ModelError(f"cannot load {self._json}: {exc}") from None
            # Model files often carry a fixed padding/truncation for training; Ignite pads itself.
            self._hf.no_padding()
            self._hf.enable_truncation(self.max_length)
        return self._hf

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Flat int32 ids and int64 offsets (len n+1) of `texts`."""
        ids, offsets, _ = self.encode_counts(texts, counts=False)
        return ids, offsets

    def encode_counts(self, texts: list[str], counts: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Flat int32 ids, int64 offsets (n+1) and, when `counts`, each text's int64 token count
        before truncation (special tokens included)."""
        if self._native is None:
            return self._hf_encode(texts, counts)
        ids, offsets, n_tokens = self._redo_uncertain(self._native.encode_batch(texts, self.prefix, self.threads),
                                                      lambda rows: [texts[i] for i in rows])
        return ids, offsets, (n_tokens if counts else None)

    def encode_arena(self, text_bytes: np.ndarray, text_offsets: np.ndarray, rows: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """encode_counts of the texts `rows` (None: all) of a UTF-8 arena (uint8; text r is
        text_bytes[text_offsets[r]:text_offsets[r+1]]), read in place by the native tokenizer:
        no str is made but for the rare texts HF tokenizers re-encodes. Native path only."""
        if self._native is None:
            raise RuntimeError(f"encode_arena needs the native tokenizer ({self.native_refusal})")

        def texts(picked: np.ndarray) -> list[str]:
            source = picked if rows is None else rows[picked]
            return [text_bytes[text_offsets[r]:text_offsets[r + 1]].tobytes().decode("utf-8", "replace")
                    for r in source]

        return self._redo_uncertain(
            self._native.encode_arena(text_bytes, text_offsets, rows, self.prefix, self.threads), texts)

    def _redo_uncertain(self, encoded: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                        texts_of: Callable[[np.ndarray], list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The native tokenizer's (ids, offsets, n_tokens, uncertain) with the uncertain texts
        (`texts_of` gives them by position) re-encoded by HF tokenizers."""
        ids, offsets, n_tokens, uncertain = encoded
        rows = np.flatnonzero(uncertain)
        if len(rows):
            ids, offsets, n_tokens = self._splice(ids, offsets, n_tokens, rows, *self._hf_encode(texts_of(rows), True))
        return ids, offsets, n_tokens

    def reference_encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """HF tokenizers' flat int32 ids and int64 offsets of prefix + text: what the native
        ingest pipeline calls for the rare texts its tokenizer flags uncertain."""
        ids, offsets, _ = self._hf_encode(texts, False)
        return ids, offsets

    def _hf_encode(self, texts: list[str], counts: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        tok = self._load_hf()
        if self.prefix:
            texts = [self.prefix + t for t in texts]
        encodings = tok.encode_batch_fast(texts) if hasattr(tok, "encode_batch_fast") else tok.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int32,
                           count=int(offsets[-1]))
        n_tokens = None
        if counts:
            n_tokens = lengths.copy()
            # Only a text cut to max_length can be longer: count those again untruncated.
            cut = np.flatnonzero(lengths >= self.max_length)
            if len(cut):
                if self._hf_full is None:
                    from tokenizers import Tokenizer

                    self._hf_full = Tokenizer.from_file(str(self._json))
                    self._hf_full.no_padding()
                    self._hf_full.no_truncation()
                full = self._hf_full.encode_batch([texts[i] for i in cut])
                n_tokens[cut] = [len(e.ids) for e in full]
        return flat, offsets, n_tokens

    @staticmethod
    def _splice(ids: np.ndarray, offsets: np.ndarray, n_tokens: np.ndarray, rows: np.ndarray,
                new_ids: np.ndarray, new_offsets: np.ndarray, new_counts: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Replace the tokens of `rows` (ascending) with those of the re-encoded texts."""
        lengths = np.diff(offsets)
        lengths[rows] = np.diff(new_offsets)
        out_offsets = np.zeros_like(offsets)
        np.cumsum(lengths, out=out_offsets[1:])
        pieces, prev = [], 0
        for k, r in enumerate(rows):  # once per re-encoded text, which are rare
            pieces.append(ids[offsets[prev]:offsets[r]])
            pieces.append(new_ids[new_offsets[k]:new_offsets[k + 1]])
            prev = r + 1
        pieces.append(ids[offsets[prev]:])
        n_tokens = n_tokens.copy()
        n_tokens[rows] = new_counts
        return np.concatenate(pieces).astype(np.int32, copy=False), out_offsets, n_tokens

    def tokenize(self, window: Window) -> None:
        ok = window.ok_rows
        if self._native is not None and window.text_bytes is not None and window.text_offsets is not None:
            flat, ok_offsets, _ = self.encode_arena(window.text_bytes, window.text_offsets, ok)
        elif len(ok):
            flat, ok_offsets = self.encode([window.texts[i] for i in ok])
        else:
            flat, ok_offsets = np.zeros(0, np.int32), np.zeros(1, np.int64)
        lengths = np.zeros(len(window), dtype=np.int64)
        lengths[ok] = np.diff(ok_offsets)
        offsets = np.zeros(len(window) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Rows in order, so the ok rows' tokens are already contiguous in `flat`.
        window.token_ids = flat
        window.token_offsets = offsets


def _trust_checked_code_points(native, hf) -> int:  # type: ignore[no-untyped-def]
    """Check each version-dependent code point alone ("a" + c + "b") through HF's normaliser and
    pre-tokenizer and the native ones; trust those that give the same words. The pipeline works
    code point by code point (the native tokenizer leaves out those that canonical ordering
    makes depend on their neighbours), so agreeing alone means agreeing in any text."""
    candidates = native.checkable_code_points().tolist()
    normalizer, pre_tokenizer = hf.normalizer, hf.pre_tokenizer
    agree = []
    for cp in candidates:
        text = "a" + chr(cp) + "b"
        normalized = normalizer.normalize_str(text) if normalizer is not None else text
        if [w for w, _ in pre_tokenizer.pre_tokenize_str(normalized)] == native.words(text):
            agree.append(cp)
    native.trust(agree)
    log.debug("tokenizer: %d of %d version-dependent code points agree with HF tokenizers",
              len(agree), len(candidates))
    return len(agree)


def _pad_id(tokenizer_json: Path) -> int:
    """The padding id tokenizer.json declares (Ignite pads itself), else 0."""
    try:
        padding = json.loads(Path(tokenizer_json).read_text(encoding="utf-8")).get("padding")
    except (OSError, ValueError):
        return 0
    return int(padding.get("pad_id", 0)) if isinstance(padding, dict) else 0
