"""Tokenizer stage: a window's texts to flat int32 token ids plus offsets, truncated to the
model's max length. HF `tokenizers` batch-wise (native, GIL released) for now."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from ignite.errors import ModelError
from ignite.pipeline.window import OK, Window


class WindowTokenizer:
    def __init__(self, tokenizer_json: Path, max_length: int, prefix: str = "") -> None:
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_file(str(tokenizer_json))
        except Exception as exc:
            raise ModelError(f"cannot load {tokenizer_json}: {exc}") from None
        # Model files often carry a fixed padding/truncation for training; Ignite pads itself.
        self._tok.no_padding()
        self._tok.enable_truncation(max_length)
        self.prefix = prefix
        self.max_length = max_length
        self.pad_id = self._tok.padding["pad_id"] if self._tok.padding else 0
        self.path = "hf-tokenizers"

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Flat int32 ids and int64 offsets (len n+1) of `texts`."""
        if self.prefix:
            texts = [self.prefix + t for t in texts]
        encodings = self._tok.encode_batch_fast(texts) if hasattr(self._tok, "encode_batch_fast") \
            else self._tok.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int32,
                           count=int(offsets[-1]))
        return flat, offsets

    def tokenize(self, window: Window) -> None:
        ok = window.ok_rows
        flat, ok_offsets = self.encode([window.texts[i] for i in ok]) if len(ok) else \
            (np.zeros(0, np.int32), np.zeros(1, np.int64))
        lengths = np.zeros(len(window), dtype=np.int64)
        lengths[ok] = np.diff(ok_offsets)
        offsets = np.zeros(len(window) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Rows in order, so the ok rows' tokens are already contiguous in `flat`.
        window.token_ids = flat
        window.token_offsets = offsets
