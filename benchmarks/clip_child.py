#!/usr/bin/env python3
"""One baseline of benchmarks/clip_bench.py in a fresh process: image files to an .npy of
normalised CLIP image embeddings with transformers' CLIPModel, fed either by CLIPProcessor in
batches on the main thread (`processor`) or by a torch DataLoader whose worker processes read and
preprocess (`dataloader`, clip-retrieval's way). Prints JSON: seconds (files to .npy, model load
excluded) and load_s."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("--model", required=True)
    p.add_argument("--files", type=Path, required=True, help="a text file naming one image per line")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--mode", choices=("processor", "dataloader"), required=True)
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()

    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = CLIPModel.from_pretrained(args.model).eval().to(dtype)
    processor = CLIPProcessor.from_pretrained(args.model)
    load_s = time.perf_counter() - start
    paths = args.files.read_text().splitlines()

    def embed(pixels: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            feats = model.get_image_features(pixel_values=pixels.to(dtype)).pooler_output.float()
        return torch.nn.functional.normalize(feats, dim=-1).numpy()

    start = time.perf_counter()
    out = []
    if args.mode == "processor":
        for a in range(0, len(paths), args.batch_size):
            images = [Image.open(path).convert("RGB") for path in paths[a:a + args.batch_size]]
            out.append(embed(processor(images=images, return_tensors="pt")["pixel_values"]))
    else:
        from torch.utils.data import DataLoader, Dataset

        class Files(Dataset):
            def __len__(self) -> int:
                return len(paths)

            def __getitem__(self, i: int) -> torch.Tensor:
                image = Image.open(paths[i]).convert("RGB")
                return processor(images=image, return_tensors="pt")["pixel_values"][0]

        loader = DataLoader(Files(), batch_size=args.batch_size, num_workers=args.workers, shuffle=False)
        for pixels in loader:
            out.append(embed(pixels))
    np.save(args.output, np.concatenate(out))
    print(json.dumps({"seconds": time.perf_counter() - start, "load_s": load_s}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
