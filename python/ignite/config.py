"""One frozen configuration per run: CLI flags over environment over the model's own files over
defaults. Everything downstream reads this, never argparse."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    if os.environ.get("IGNITE_CACHE"):
        return Path(os.environ["IGNITE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "ignite"


@dataclass(frozen=True)
class ModelOptions:
    """What changes the numbers a model produces (part of export and resume keys)."""

    pooling: str
    normalize: bool
    max_length: int
    prefix: str
    dim: int | None
    tower: str = "text"  # of a CLIP model: "text" or "vision", as the inputs decide


@dataclass(frozen=True)
class ImageOptions:
    """An image run's options that change its output (part of the resume key)."""

    field: str | None  # --image-field of Parquet/JSONL inputs
    max_pixels: int
    decode: str  # exact | fast


@dataclass(frozen=True)
class EmbedConfig:
    inputs: tuple[Path, ...]
    output: Path
    output_kind: str  # npy | parquet | dir
    field: str
    id_field: str | None
    model_name: str
    model_path: Path
    model: ModelOptions
    backend: str
    dtype: str
    output_dtype: str
    batch_tokens: int
    window_records: int
    shard_rows: int
    cache_dir: Path
    threads: int
    quiet: bool
    overwrite: bool
    errors_path: Path | None
    max_errors: int | None
    image: ImageOptions | None = None  # set for an image run (CLIP vision tower)
    commit_seconds: float = 1.0  # --commit-interval

    def as_dict(self) -> dict[str, Any]:
        """The fields, paths as str; shallow where asdict() would deep-copy every input path."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "inputs":
                value = [str(p) for p in value]
            elif is_dataclass(value):
                value = asdict(value)
            elif isinstance(value, Path):
                value = str(value)
            out[f.name] = value
        return out
