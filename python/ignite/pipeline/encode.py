"""Embed a small list of texts in this thread (training samples, recall queries, search
queries): the same tokenizer, batcher and runner as the pipeline, without the stages."""
from __future__ import annotations

import numpy as np

from ignite.backends.base import Runner
from ignite.pipeline.batcher import fill_batch, plan_batches
from ignite.pipeline.tokenize import WindowTokenizer


def embed_texts(texts: list[str], tokenizer: WindowTokenizer, runner: Runner, batch_tokens: int,
                pad_multiple: int = 1) -> np.ndarray:
    out = np.zeros((len(texts), runner.dim), dtype=np.float32)
    if not texts:
        return out
    flat, offsets = tokenizer.encode(texts)
    plan = plan_batches(np.diff(offsets), batch_tokens, pad_multiple, max_width=tokenizer.max_length)
    for rows, width in zip(plan, plan.widths.tolist()):
        ids, mask = fill_batch(flat, offsets, rows, pad_multiple, tokenizer.pad_id, width=width)
        out[rows] = runner.run(ids, mask)
    return out
