"""Embed a small list of texts or images in this thread (training samples, recall queries, search
queries): the same tokenizer, batcher, preprocessor and runner as the pipeline, without the stages."""
from __future__ import annotations

from typing import Any

import numpy as np

from ignite.backends.base import Runner, capabilities
from ignite.backends.packing import fill_batch, plan_batches
from ignite.pipeline.tokenize import WindowTokenizer
from ignite.rows.status import OK


def embed_texts(texts: list[str], tokenizer: WindowTokenizer, runner: Runner, batch_tokens: int,
                pad_multiple: int = 1) -> np.ndarray:
    out = np.zeros((len(texts), runner.dim), dtype=np.float32)
    if not texts:
        return out
    flat, offsets = tokenizer.encode(texts)
    caps = capabilities(runner)
    pad_multiple = max(pad_multiple, caps.pad_multiple)
    plan = plan_batches(np.diff(offsets), batch_tokens, pad_multiple, caps.max_rows,
                        caps.max_length or tokenizer.max_length)
    for rows, width in zip(plan, plan.widths.tolist()):
        ids, mask = fill_batch(flat, offsets, rows, pad_multiple, tokenizer.pad_id, width=width)
        out[rows] = runner.run(ids, mask)
    return out


def embed_images(images: list[bytes], preprocessor: Any, shape: tuple[int, int, int], runner: Any,
                 batch_images: int) -> tuple[np.ndarray, np.ndarray]:
    """Embed a few encoded images on this thread (index samples, search queries): their vectors
    and uint8 status codes; an image that cannot be decoded gets zeros. `shape`: the
    preprocessor's (3, H, W)."""
    out = np.zeros((len(images), runner.dim), np.float32)
    statuses = np.zeros(len(images), np.uint8)
    pixels = np.empty((batch_images, *shape), np.float32)
    for a in range(0, len(images), batch_images):
        chunk = images[a:a + batch_images]
        statuses[a:a + len(chunk)] = preprocessor.process(chunk, pixels[:len(chunk)])
        ok = np.flatnonzero(statuses[a:a + len(chunk)] == OK)
        if len(ok):
            out[ok + a] = runner.run_images(pixels[ok])
    return out, statuses
