"""Helpers for the CLIP tests: random-weight CLIP models built from a config by
benchmarks/random_clip.py (no CLIP weights can be downloaded here), the shared photos in input
order, and transformers' reference embeddings (CLIPModel.get_image_features on
CLIPImageProcessorPil's pixels, get_text_features on AutoTokenizer's ids, L2-normalised)."""
from __future__ import annotations

import importlib.util
import io
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SHARED_DATA

_spec = importlib.util.spec_from_file_location("random_clip", REPO / "benchmarks" / "random_clip.py")
assert _spec is not None and _spec.loader is not None
random_clip = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(random_clip)

# Deterministic and quick: fp32 on onnxruntime, one thread (the machine is shared), no progress bar.
FAST = ("--backend", "onnxruntime", "--dtype", "fp32", "--threads", "1", "--quiet")
IMAGES = SHARED_DATA / "images"


def build_clip(name: str, dest: Path) -> Path:
    """A random-weight CLIP of architecture `name`, built once per folder and atomically; the tiny
    one's tokenizer is trained on generated text, ViT-B/32's on the shared passages when present."""
    if (dest / "model.safetensors").is_file():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    random_clip.make(name, tmp, texts=random_clip.generated_texts(2000) if name == "tiny" else None)
    os.replace(tmp, dest)
    return dest


def shared_images() -> Path:
    if not (IMAGES / "folder").is_dir():
        pytest.skip(f"{IMAGES} not found: the shared photos live beside the repo in ../shared/data/images "
                    f"(set IGNITE_SHARED_DATA to another folder)")
    return IMAGES


def folder_images(limit: int | None = None) -> list[tuple[str, bytes]]:
    """(id, bytes) of the loose photos, sorted by name as `--input folder/` lists them."""
    files = sorted(p for p in (shared_images() / "folder").iterdir() if p.is_file())[:limit]
    return [(p.name, p.read_bytes()) for p in files]


def tar_images(tar: Path, limit: int | None = None) -> list[tuple[str, bytes]]:
    """(key, bytes) of a shard's image members in archive order."""
    out = []
    with tarfile.open(tar) as archive:
        for member in archive:
            if member.isfile() and Path(member.name).suffix in (".jpg", ".png", ".webp"):
                handle = archive.extractfile(member)
                assert handle is not None
                out.append((str(Path(member.name).with_suffix("")), handle.read()))
                if limit is not None and len(out) >= limit:
                    break
    return out


def write_tar(dest: Path, items: list[tuple[str, bytes]], ext: str = ".jpg") -> Path:
    """A WebDataset shard: KEY.jpg beside KEY.json for each item."""
    with tarfile.open(dest, "w") as archive:
        for key, data in items:
            for name, payload in ((key + ext, data), (key + ".json", b'{"key": "%s"}' % key.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
    return dest


def reference_image_embeddings(model_dir: Path, images: list[bytes], dtype: str = "fp32") -> np.ndarray:
    import torch
    from PIL import Image
    from transformers import CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    processor = CLIPImageProcessorPil.from_pretrained(str(model_dir))
    model = CLIPModel.from_pretrained(str(model_dir)).eval()
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    out = []
    for a in range(0, len(images), 16):
        pil = [Image.open(io.BytesIO(b)).convert("RGB") for b in images[a:a + 16]]
        pixels = processor(images=pil, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            feats = model.get_image_features(pixel_values=pixels.to(model.dtype)).pooler_output.float()
        out.append(torch.nn.functional.normalize(feats, dim=-1).numpy())
    return np.concatenate(out)


def reference_text_embeddings(model_dir: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoTokenizer, CLIPModel

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = CLIPModel.from_pretrained(str(model_dir)).eval()
    out = []
    for a in range(0, len(texts), 16):
        enc = tokenizer(texts[a:a + 16], padding=True, truncation=True, max_length=77, return_tensors="pt")
        with torch.inference_mode():
            feats = model.get_text_features(**enc).pooler_output
        out.append(torch.nn.functional.normalize(feats, dim=-1).numpy())
    return np.concatenate(out)
