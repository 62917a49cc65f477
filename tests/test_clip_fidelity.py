"""CLIP fidelity against transformers, with random weights (no CLIP weights can be downloaded
here): `ignite embed` on the shared photos and on real passages through the CLI, each row
against CLIPModel.get_image_features on CLIPImageProcessorPil's pixels / get_text_features,
L2-normalised. fp32 >= 0.9999 cosine with a tiny CLIP and with the ViT-B/32 architecture; bf16
>= 0.999 on a few records (bf16 is slow on a CPU without native bf16)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from clipkit import (
    FAST,
    build_clip,
    folder_images,
    reference_image_embeddings,
    reference_text_embeddings,
    shared_images,
    tar_images,
)
from conftest import cosine_rows, read_jsonl_zst, run_cli, shared_file


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip("tiny", tmp_path_factory.getbasetemp() / "clip-tiny")


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip("vit-b-32", tmp_path_factory.getbasetemp() / "clip-vit-b-32")


def _embed(inputs: list[str | Path], out: Path, model: Path, cache_dir: Path, *extra: str) -> np.ndarray:
    proc = run_cli("embed", "--input", *inputs, "--output", out, "--model", model, *extra, cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    return np.load(out)


def _texts(n: int, tmp: Path) -> tuple[Path, list[str]]:
    records = read_jsonl_zst(shared_file("passages.jsonl.zst"), n)
    path = tmp / "passages.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path, [r["text"] for r in records]


def test_tiny_clip_images_fp32_all_shared_photos(tiny_clip: Path, tmp_path: Path, cache_dir: Path) -> None:
    """All 1,200 shared photos: the folder, then both shards; row i is image i."""
    root = shared_images()
    tars = sorted(root.glob("photos-*.tar"))
    got = _embed([root / "folder", *tars], tmp_path / "e.npy", tiny_clip, cache_dir, *FAST)
    items = folder_images() + [x for tar in tars for x in tar_images(tar)]
    ids = pq.read_table(tmp_path / "e.ids.parquet").column("id").to_pylist()
    assert ids == [key for key, _ in items]
    cos = cosine_rows(got, reference_image_embeddings(tiny_clip, [b for _, b in items]))
    print(f"tiny CLIP (random weights) fp32 image cosine over {len(items)} photos: min {cos.min():.7f}")
    assert cos.min() >= 0.9999


def test_tiny_clip_text_fp32(tiny_clip: Path, tmp_path: Path, cache_dir: Path) -> None:
    path, texts = _texts(300, tmp_path)
    proc = run_cli("embed", "--input", path, "--output", tmp_path / "t.npy", "--model", tiny_clip, *FAST,
                   cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert "CLIP text tower" in proc.stderr
    cos = cosine_rows(np.load(tmp_path / "t.npy"), reference_text_embeddings(tiny_clip, texts))
    print(f"tiny CLIP (random weights) fp32 text cosine over {len(texts)} passages: min {cos.min():.7f}")
    assert cos.min() >= 0.9999


def _both_towers(model: Path, items: list[tuple[str, bytes]], n_texts: int, tmp_path: Path, cache_dir: Path,
                 opts: tuple[str, ...], label: str, least: float) -> None:
    """Embed `items` (name, bytes) as loose files and `n_texts` passages through the CLI; each tower's
    min cosine to transformers' get_image_features / get_text_features is at least `least`."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, (key, data) in enumerate(items):
        (inputs / f"{i:03d}-{key}.jpg").write_bytes(data)  # the decoders go by the bytes, not the name
    got = _embed([inputs], tmp_path / "e.npy", model, cache_dir, *opts)
    cos = cosine_rows(got, reference_image_embeddings(model, [b for _, b in items]))
    print(f"ViT-B/32 (random weights) {label} image cosine over {len(items)} photos: min {cos.min():.7f}")
    assert cos.min() >= least
    path, texts = _texts(n_texts, tmp_path)
    got = _embed([path], tmp_path / "t.npy", model, cache_dir, *opts)
    cos = cosine_rows(got, reference_text_embeddings(model, texts))
    print(f"ViT-B/32 (random weights) {label} text cosine over {len(texts)} passages: min {cos.min():.7f}")
    assert cos.min() >= least


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_vit_b32_images_and_text_fp32(vit_b32: Path, backend: str, tmp_path: Path, cache_dir: Path) -> None:
    """The ViT-B/32 architecture on 24 photos (12 loose, 12 from a shard) and 24 passages."""
    items = folder_images(12) + tar_images(shared_images() / "photos-00000.tar", 12)
    _both_towers(vit_b32, items, 24, tmp_path, cache_dir, ("--backend", backend, "--dtype", "fp32", "--threads", "1",
                                                          "--quiet"), f"fp32 {backend}", 0.9999)


def test_vit_b32_bf16(vit_b32: Path, tmp_path: Path, cache_dir: Path) -> None:
    """bf16 (torch; OpenVINO takes bf16 only where the CPU has it natively) against the fp32 reference."""
    _both_towers(vit_b32, folder_images(8), 8, tmp_path, cache_dir,
                 ("--backend", "torch", "--dtype", "bf16", "--threads", "1", "--quiet"), "bf16", 0.999)
