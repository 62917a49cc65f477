"""One sentence-transformers run, file to file, in its own process (run by benchmark.py):
read the JSONL, encode, np.save. Prints a JSON line with its timings."""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer

    t0 = time.perf_counter()
    model = SentenceTransformer(args.model, device=args.device)
    # Always explicit: transformers 5 loads a checkpoint in its stored dtype, which may not be fp32.
    model.to(getattr(torch, {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[args.dtype]))
    model.encode(["warm up"] * 8, batch_size=8)
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    with open(args.input, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    emb = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)
    np.save(args.output, emb.astype(np.float32))
    print(json.dumps({"load_s": load, "run_s": time.perf_counter() - t1, "rows": len(texts)}))


if __name__ == "__main__":
    main()
