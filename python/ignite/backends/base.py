"""The one interface every backend implements (TEI's shape): a runner takes a padded batch of
int32 ids and mask and returns pooled float32 embeddings. Batching policy never lives here."""
from __future__ import annotations

from typing import Protocol

import numpy as np


class Runner(Protocol):
    name: str  # backend name, e.g. "onnxruntime"
    device: str  # "cpu", "cuda:0"
    dtype: str  # compute precision actually used
    dim: int

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """[rows, seq] int32 ids and mask -> [rows, dim] float32 pooled embeddings."""
        ...


class BackendUnavailable(Exception):
    """This backend cannot run here; the message says why (used by --backend auto)."""
