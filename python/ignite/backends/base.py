"""The one interface every backend implements (TEI's shape): a runner takes a padded batch of
int32 ids and mask and returns pooled float32 embeddings, and declares what it accepts
(Capabilities), which the packer obeys. Batching policy never lives here. A runner opened on a
CLIP model's vision tower takes pixels instead (ImageRunner.run_images)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

MAX_ROWS = 1024  # rows of a batch at most, on every backend: the one place this cap lives
# Widths are rounded up to this on a GPU (tensor-core tiles; a bounded set of shapes for CUDA
# graphs and TensorRT profiles); on a CPU every width is its own.
GPU_PAD_MULTIPLE = 8


def default_buckets(max_length: int) -> list[int]:
    """Sequence-length bucket bounds (TensorRT profiles): powers of two from 32 below
    max_length, then max_length."""
    buckets, bound = [], 32
    while bound < max_length:
        buckets.append(bound)
        bound *= 2
    return buckets + [max_length]


@dataclass(frozen=True)
class Capabilities:
    """What a runner accepts. The packer never makes a batch with more than `max_rows` rows or
    wider than `max_length` tokens (0: any width), and pads widths to `pad_multiple` (capped at
    max_length); the pipeline runs `slots` batches on it at once, one worker thread each."""

    max_rows: int = MAX_ROWS
    max_length: int = 0
    pad_multiple: int = 1
    slots: int = 1


def capabilities(runner: object) -> Capabilities:
    """The runner's declaration; a runner that declares nothing accepts the defaults."""
    caps = getattr(runner, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()


def common_capabilities(runners: Sequence[object]) -> Capabilities:
    """What every one of `runners` accepts: batches go to whichever device is free."""
    caps = [capabilities(r) for r in runners]
    widths = [c.max_length for c in caps if c.max_length]
    return Capabilities(max_rows=min(c.max_rows for c in caps), max_length=min(widths) if widths else 0,
                        pad_multiple=max(c.pad_multiple for c in caps), slots=1)


def native_backend(runner: object) -> Any:
    """The runner's model as an ignite._engine.NativeBackend, which workers on the native ingest
    path run with no Python per batch; None for a runner without one (the default: Python calls
    run() for each batch). A runner offers it with a `native_backend()` method."""
    make = getattr(runner, "native_backend", None)
    return make() if callable(make) else None


class Runner(Protocol):
    """A backend on one device. Optional, found with getattr: `capabilities` (a Capabilities)
    and `native_backend()` (see native_backend)."""

    name: str  # backend name, e.g. "onnxruntime"
    device: str  # "cpu", "cuda:0"
    dtype: str  # compute precision actually used
    dim: int

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """[rows, seq] int32 ids and mask -> [rows, dim] float32 pooled embeddings."""
        ...


class ImageRunner(Protocol):
    name: str
    device: str
    dtype: str
    dim: int

    def run_images(self, pixel_values: np.ndarray) -> np.ndarray:
        """[rows, 3, H, W] float32 preprocessed pixels -> [rows, dim] float32 embeddings."""
        ...


class BackendUnavailable(Exception):
    """This backend cannot run here; the message says why (used by --backend auto)."""
