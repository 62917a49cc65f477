"""Ignite: a file-to-file embedding engine.

    ignite embed --input corpus.jsonl.zst --output emb.npy
"""
from __future__ import annotations

__version__ = "0.1.0"

from ignite.errors import IgniteError, UsageError  # noqa: E402

__all__ = ["IgniteError", "UsageError", "__version__"]
