"""A batch: rows of one window padded for a backend, on their way from the batcher (or the image
preprocessor) to a worker and back to the writer."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ignite.rows.window import Window

if TYPE_CHECKING:
    from ignite.backends.packing import Buffers
    from ignite.pipeline.images import PixelBuffer


@dataclass
class Batch:
    window: Window
    rows: np.ndarray  # int64 rows of the window, in the order of the batch
    input_ids: np.ndarray  # int32 [rows, seq]
    attention_mask: np.ndarray  # int32 [rows, seq]
    real_tokens: int
    embeddings: np.ndarray | None = None
    tried: set[int] = field(default_factory=set)  # workers (devices) this batch failed on
    # The pooled buffers input_ids and attention_mask (or pixels) are views of; the writer releases
    # them once it has copied the embeddings (a batch handed to another device is written only once).
    storage: Buffers | PixelBuffer | None = None
    # An image batch: [rows, 3, H, W] float32 for a vision tower (input_ids and mask are then empty).
    pixels: np.ndarray | None = None
