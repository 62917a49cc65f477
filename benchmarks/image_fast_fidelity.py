#!/usr/bin/env python3
"""What `--image-decode fast` costs in fidelity, at the embedding: the same images embedded by
`ignite embed` with the default (exact) decode and with the fast one, cosine row by row, on a
CLIP model (default: the ViT-B/32 architecture with random weights, benchmarks/random_clip.py:
the figure says how far the pixels move the vision tower, not how retrieval changes).

    python benchmarks/image_fast_fidelity.py --images ../shared/data/images --limit 400 --out benchmarks/results/cpu-DATE
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ignite_cmd, machine, run_child  # noqa: E402
from clip_bench import gather  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--images", type=Path, required=True, help="a folder of images and/or WebDataset .tar shards")
    p.add_argument("--limit", type=int, default=400)
    p.add_argument("--model", type=Path, default=None, help="a CLIP model folder (default: ViT-B/32, random weights)")
    p.add_argument("--out", type=Path, required=True, help="folder for image_fast_fidelity.json")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="image-fast-fidelity-"))
    try:
        model = args.model
        if model is None:
            from random_clip import make

            model = make("vit-b-32", work / "clip-vit-b-32")
        folder = work / "images"
        files = gather(args.images, args.limit, folder)
        out = {}
        for mode in ("exact", "fast"):
            out[mode] = work / f"{mode}.npy"
            cmd = ignite_cmd() + ["embed", "--input", str(folder), "--output", str(out[mode]), "--model", str(model),
                                  "--backend", "openvino", "--dtype", "fp32", "--image-decode", mode, "--quiet"]
            run_child(cmd, {"IGNITE_CACHE": str(work / "cache")})
        exact, fast = np.load(out["exact"]), np.load(out["fast"])
        cos = (exact * fast).sum(1) / np.maximum(np.linalg.norm(exact, axis=1) * np.linalg.norm(fast, axis=1), 1e-12)
        same = int((cos >= 1 - 1e-7).sum())
        info = machine()
        result = {"images": len(files), "model": "CLIP ViT-B/32 architecture, random weights" if args.model is None
                  else str(args.model), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                  "p01_cosine": float(np.quantile(cos, 0.01)), "identical_rows": same, "machine": info}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "image_fast_fidelity.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"{info['cpu']}, {info['cores']} cores, flags {' '.join(info['matmul_flags'])}")
        print(f"{len(files)} images, {result['model']}: --image-decode fast vs exact, embedding cosine min "
              f"{result['min_cosine']:.5f}, 1st percentile {result['p01_cosine']:.5f}, mean {result['mean_cosine']:.6f}; "
              f"{same} rows identical (decoded at full scale)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
