"""ONNX export, once per model and options, into the cache. The key hashes the model files and
every option that changes the graph, so a second run (or another process) reuses the file."""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ignite.config import ModelOptions
from ignite.models.spec import ModelSpec

log = logging.getLogger(__name__)

EXPORT_FORMAT = 2  # bump when the exported graph changes for the same inputs
OPSET = 17
# The precision the transformer computes in is part of the graph: TensorRT 11 builds only strongly
# typed networks, whose every type comes from the ONNX, so an fp16 engine needs an fp16 graph.
# Inputs stay int32 and the pooled output float32 in every precision.
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# preprocessor_config.json: a CLIP model's image preprocessing changes its image embeddings.
_MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "preprocessor_config.json")


def model_fingerprint(spec: ModelSpec) -> str:
    """Hash of the files that define the network's weights and shape."""
    digest = hashlib.sha256()
    for name in _MODEL_FILES:
        path = spec.path / name
        if path.is_file():
            digest.update(name.encode())
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def export_key(spec: ModelSpec, options: ModelOptions, dtype: str = "fp32") -> str:
    payload = {
        "format": EXPORT_FORMAT, "opset": OPSET, "model": model_fingerprint(spec),
        "pooling": options.pooling, "normalize": options.normalize, "dim": options.dim, "dtype": dtype,
    }
    if options.tower != "text":  # keeps the keys of text graphs as they were
        payload["tower"] = options.tower
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def export_onnx(spec: ModelSpec, options: ModelOptions, cache_dir: Path, dtype: str = "fp32") -> Path:
    """Return the path of the cached ONNX graph computing in `dtype` (fp32, fp16, bf16),
    exporting it first if needed."""
    if dtype not in PRECISIONS:
        raise ValueError(f"ONNX graphs are exported in {', '.join(PRECISIONS)}, not {dtype}")
    key = export_key(spec, options, dtype)
    final = cache_dir / "onnx" / key
    onnx_path = final / "model.onnx"
    if onnx_path.is_file():
        return onnx_path
    with locked(cache_dir / "onnx" / f"{key}.lock"):
        if onnx_path.is_file():  # another process finished it while we waited
            return onnx_path
        log.info("exporting %s to ONNX in %s (once; cached under %s)", spec.name, dtype, final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
        try:
            _export(spec, options, tmp / "model.onnx", dtype)
            meta = {"model": spec.name, "path": str(spec.path), "options": options.__dict__, "opset": OPSET,
                    "dtype": dtype}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return onnx_path


def _export(spec: ModelSpec, options: ModelOptions, dest: Path, dtype: str) -> None:
    import torch

    from ignite.models.encoder import build_encoder

    encoder = build_encoder(spec, options.pooling, options.normalize, options.dim, attn="eager", tower=options.tower)
    # Traced on the CPU, which runs fp16 and bf16 too (slowly, on a batch of two).
    encoder = encoder.to(dtype=getattr(torch, PRECISIONS[dtype]))
    if options.tower == "vision":
        _export_vision(encoder, dest, spec)
        return
    ids = torch.ones((2, 8), dtype=torch.int32)
    mask = torch.ones((2, 8), dtype=torch.int32)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder, (ids, mask), str(dest),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "embedding": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )


def _export_vision(encoder: object, dest: Path, spec: ModelSpec) -> None:
    """The vision tower: float32 pixel_values [batch, 3, H, W] (H, W fixed by the preprocessor's
    crop) -> float32 embedding [batch, dim]."""
    import torch

    from ignite.images.preprocess import ImageSpec

    pixels = torch.zeros((2, *ImageSpec.from_model_dir(spec.path).shape), dtype=torch.float32)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder, (pixels,), str(dest), input_names=["pixel_values"], output_names=["embedding"],
            dynamic_axes={"pixel_values": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=OPSET, dynamo=False,
        )

