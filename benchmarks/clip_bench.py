#!/usr/bin/env python3
"""CLIP image embedding, file to file, on the CPU: Ignite (`ignite embed` in a subprocess) against
(a) transformers' CLIPModel + CLIPProcessor in batches and (b) a torch DataLoader with worker
processes feeding the same model (clip-retrieval's way), each in fp32 and bf16, best of each, on
the same image files. Every system reads the files and writes an .npy of normalised embeddings;
model loading and export are excluded and reported apart. The model is the ViT-B/32 architecture
with random weights (benchmarks/random_clip.py): speed is the architecture's, the embeddings mean
nothing.

    python benchmarks/clip_bench.py --images ../shared/data/images --limit 400 --out benchmarks/results/cpu-DATE
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ignite_cmd, machine, run_child  # noqa: E402

log = logging.getLogger("clip_bench")
SUMMARY = re.compile(r"embedded ([\d,]+) images with the CLIP vision tower in ([\d.]+)s")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def gather(source: Path, limit: int, dest: Path) -> list[Path]:
    """The first `limit` images of `source` (loose files of a folder, sorted, then the image members
    of its .tar shards) as loose files in `dest`, which every system reads."""
    dest.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    loose = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    for path in loose[:limit]:
        files.append(dest / f"{len(files):06d}{path.suffix.lower()}")
        shutil.copyfile(path, files[-1])
    for tar in sorted(source.rglob("*.tar")):
        with tarfile.open(tar) as archive:
            for member in archive:
                if len(files) >= limit:
                    return files
                suffix = Path(member.name).suffix.lower()
                if member.isfile() and suffix in IMAGE_SUFFIXES:
                    handle = archive.extractfile(member)
                    assert handle is not None
                    files.append(dest / f"{len(files):06d}{suffix}")
                    files[-1].write_bytes(handle.read())
    return files


def vision_flops(vision: dict[str, Any]) -> tuple[int, float]:
    """Tokens per image of a CLIP vision tower (patches and the class token) and its forward FLOPs
    per image, counted as benchmark.flops_per_token counts a text encoder's."""
    from benchmark import flops_per_config

    tokens = (vision["image_size"] // vision["patch_size"]) ** 2 + 1
    return tokens, tokens * flops_per_config(vision, tokens)


def derive(result: dict[str, Any], vision: dict[str, Any]) -> None:
    """Each row's share of this machine's matmul ceiling in its precision (tokens-equivalent: the
    images' patch tokens through the tower's projections and feed-forward)."""
    from benchmark import matmul_peaks

    tokens, flops = vision_flops(vision)
    result.update(tokens_per_image=tokens, flops_per_image=flops,
                  **matmul_peaks(sorted({r["dtype"] for r in result["rows"]} | {"fp32"})))
    peaks = result["matmul_peak_flops"]
    for r in result["rows"]:
        r["tokens_per_s"] = round(r["images_per_s"] * tokens, 1)
        # Against the faster of its precision's and fp32's ceilings: without native bf16 a bf16
        # product is emulated far below what the same cores do in fp32.
        r["matmul_share"] = round(r["images_per_s"] * flops / max(peaks[r["dtype"]], peaks["fp32"]), 4)


def report(result: dict[str, Any]) -> None:
    info, rows = result["machine"], result["rows"]
    lines = [f"{'system':<34} {'backend':<12} {'dtype':<6} {'images/s':>9} {'tokens/s':>9} {'of peak':>8} "
             f"{'load s':>7} {'cos>=':>9}"]
    for r in rows:
        lines.append(f"{r['system']:<34} {r['backend']:<12} {r['dtype']:<6} {r['images_per_s']:>9.2f} "
                     f"{r.get('tokens_per_s', 0):>9.0f} {r.get('matmul_share', 0):>8.1%} {r['load_s']:>7.1f} "
                     f"{r['min_cosine_to_fp32_processor']:>9.5f}")
    print(f"machine: {info['cpu']}, {info['cores']} cores; matmul flags: "
          f"{' '.join(info.get('matmul_flags', [])) or 'none'}; matmul peak " +
          ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s ({result.get('matmul_peak_by', {}).get(k, 'torch')})"
                    for k, v in result.get("matmul_peak_flops", {}).items()))
    print(f"model: {result['model']}; {result['images']} images; {result.get('tokens_per_image', '?')} tokens an image"
          + (f"; {result['note']}" if result.get("note") else ""))
    print("\n".join(lines))
    print(f"best: Ignite {result['best'].get('ignite', {}).get('images_per_s', 0):.2f} images/s, "
          f"{result['ignite_vs_best_baseline']:.2f}x the best baseline")


def run_ignite(model: Path, folder: Path, work: Path, backend: str, dtype: str, cache: Path) -> dict[str, Any]:
    out = work / f"ignite-{backend}-{dtype}.npy"
    cmd = ignite_cmd() + ["embed", "--input", str(folder), "--output", str(out), "--model", str(model),
                          "--backend", backend, "--dtype", dtype, "--quiet", "--overwrite"]
    wall, rss, _, err = run_child(cmd, {"IGNITE_CACHE": str(cache)})
    match = SUMMARY.search(err)
    if not match:
        raise RuntimeError(f"no summary line in Ignite's output:\n{err[-2000:]}")
    seconds = float(match.group(2))
    return {"system": "ignite", "backend": backend, "dtype": dtype, "seconds": seconds,
            "load_s": round(wall - seconds, 2), "peak_rss_mb": round(rss, 1), "output": out,
            "preprocessor": (re.search(r"preprocessed by (\S+);", err) or [None, "?"])[1], "command": " ".join(cmd)}


def run_baseline(mode: str, model: Path, files: Path, work: Path, dtype: str, batch: int,
                 workers: int) -> dict[str, Any]:
    out = work / f"{mode}-{dtype}.npy"
    cmd = [sys.executable, str(Path(__file__).with_name("clip_child.py")), "--model", str(model), "--files",
           str(files), "--output", str(out), "--mode", mode, "--dtype", dtype, "--batch-size", str(batch),
           "--workers", str(workers)]
    _, rss, stdout, _ = run_child(cmd)
    got = json.loads(stdout.strip().splitlines()[-1])
    system = "transformers CLIPProcessor" if mode == "processor" else f"torch DataLoader ({workers} workers)"
    return {"system": system, "backend": "torch", "dtype": dtype, "seconds": got["seconds"],
            "load_s": round(got["load_s"], 2), "peak_rss_mb": round(rss, 1), "output": out, "command": " ".join(cmd)}


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['system']}\n{r['backend']} {r['dtype']}" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.5))
    ax.barh(labels[::-1], [r["images_per_s"] for r in rows][::-1],
            color=["tab:orange" if r["system"] == "ignite" else "tab:blue" for r in rows][::-1])
    ax.set_xlabel("images/s, file to file (higher is better)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--images", type=Path, default=None, help="a folder of images and/or WebDataset .tar shards")
    p.add_argument("--limit", type=int, default=400, help="images to embed (default 400)")
    p.add_argument("--model", type=Path, default=None,
                   help="a CLIP model folder (default: the ViT-B/32 architecture with random weights, built here)")
    p.add_argument("--out", type=Path, required=True, help="folder for clip_bench.json and clip_bench.png")
    p.add_argument("--batch-size", type=int, default=32, help="the baselines' batch (Ignite's CPU default is 32)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    p.add_argument("--note", default="", help="a line about the conditions, kept with the results")
    p.add_argument("--derive", action="store_true",
                   help="only recompute the derived columns (tokens/s, share of the matmul peak) of OUT/clip_bench.json")
    args = p.parse_args(argv)
    if args.derive:
        from random_clip import vision_config

        path = args.out / "clip_bench.json"
        result = json.loads(path.read_text())
        derive(result, json.loads((args.model / "config.json").read_text())["vision_config"] if args.model
               else vision_config("vit-b-32"))
        path.write_text(json.dumps(result, indent=2))
        report(result)
        return 0
    logging.basicConfig(level=logging.INFO, format="clip_bench: %(message)s")
    work = Path(tempfile.mkdtemp(prefix="clip-bench-"))
    try:
        model = args.model
        if model is None:
            from random_clip import make

            log.info("building the ViT-B/32 architecture with random weights")
            model = make("vit-b-32", work / "clip-vit-b-32")
        folder = work / "images"
        files = gather(args.images, args.limit, folder)
        listing = work / "files.txt"
        listing.write_text("".join(f"{f}\n" for f in files))
        cache = work / "cache"
        rows = []
        for dtype in args.dtypes:
            # OpenVINO takes bf16 only where the CPU multiplies it natively; torch runs it anywhere.
            for backend in (["openvino", "onnxruntime"] if dtype == "fp32" else ["openvino", "torch"]):
                try:  # export and compile happen before the pipeline starts: in load_s, not in seconds
                    rows.append(run_ignite(model, folder, work, backend, dtype, cache))
                except RuntimeError as exc:
                    log.info("ignite %s %s: not run here (%s)", backend, dtype, str(exc).strip().splitlines()[-1])
                    continue
                log.info("ignite %s %s: %.1fs", backend, dtype, rows[-1]["seconds"])
            for mode in ("processor", "dataloader"):
                rows.append(run_baseline(mode, model, listing, work, dtype, args.batch_size, args.workers))
                log.info("%s %s: %.1fs", rows[-1]["system"], dtype, rows[-1]["seconds"])
        reference = np.load(next(r["output"] for r in rows if r["system"] != "ignite" and r["dtype"] == "fp32"))
        for r in rows:
            r["images_per_s"] = round(len(files) / r["seconds"], 2)
            got = np.load(r.pop("output"))
            r["min_cosine_to_fp32_processor"] = round(float((got * reference).sum(axis=1).min()), 6)
        info = machine()
        best = {}
        for r in rows:
            key = "ignite" if r["system"] == "ignite" else r["system"]
            if key not in best or r["images_per_s"] > best[key]["images_per_s"]:
                best[key] = r
        best_baseline = max((r for k, r in best.items() if k != "ignite"), key=lambda r: r["images_per_s"])
        ratio = best["ignite"]["images_per_s"] / best_baseline["images_per_s"] if "ignite" in best else 0.0
        result = {"machine": info, "images": len(files), "model": "CLIP ViT-B/32 architecture, random weights"
                  if args.model is None else str(args.model), "note": args.note, "rows": rows,
                  "best": {k: {"backend": r["backend"], "dtype": r["dtype"], "images_per_s": r["images_per_s"]}
                           for k, r in best.items()},
                  "ignite_vs_best_baseline": round(ratio, 2)}
        derive(result, json.loads((Path(model) / "config.json").read_text())["vision_config"])
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "clip_bench.json").write_text(json.dumps(result, indent=2))
        title = (f"CLIP ViT-B/32 (random weights), {len(files)} images file to file, {info['cpu']}, "
                 f"{info['cores']} cores")
        plot(rows, args.out / "clip_bench.png", title)
        report(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
