"""Decode + preprocess, images/s per core: Ignite's native preprocessor (exact and fast mode,
one thread) against Pillow (PillowPreprocessor, the reference, and transformers'
CLIPImageProcessorPil fed Image.open(...).convert("RGB")), on the same encoded images held in
memory, CLIP's 224 spec. Per core = images per CPU-second of the process (one thread each), so a
busy machine costs less than in wall time; wall images/s and the native pool on every core are
reported too. Best of --repeat runs. Also: fast mode's difference from exact, in 8-bit steps.

    python benchmarks/image_preprocess_bench.py [CORPUS ...] [--limit N] [--repeat 3] [--out DIR]

CORPUS: image files, folders and .tar shards (default ../shared/data/images: the folder and the
tars' images). Writes DIR/image_preprocess.json and DIR/image_preprocess.png.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from pipeline_cpu_cost import cpu_flags  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "images"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
BATCH = 64
GOALS = {"native exact": 2.0, "native fast": 4.0}  # x Pillow per core, from issue 16


def load(paths: list[Path], limit: int | None) -> list[bytes]:
    items: list[bytes] = []
    for path in paths:
        if path.is_dir():
            items += [p.read_bytes() for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
            items += load(sorted(path.glob("*.tar")), None)
        elif path.suffix == ".tar":
            with tarfile.open(path) as tar:
                for m in tar.getmembers():
                    if m.isfile() and Path(m.name).suffix.lower() in IMAGE_SUFFIXES:
                        items.append(tar.extractfile(m).read())  # type: ignore[union-attr]
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            items.append(path.read_bytes())
    return items[:limit] if limit else items


def timed(fn: Callable[[list[bytes], np.ndarray], object], items: list[bytes], repeat: int) -> dict[str, float]:
    """Best of `repeat` passes over all items in batches: wall and CPU seconds of the process."""
    out = np.zeros((BATCH, 3, 224, 224), np.float32)
    best: dict[str, float] = {}
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(items), BATCH):
            chunk = items[i:i + BATCH]
            fn(chunk, out[:len(chunk)])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if not best or cpu < best["cpu_s"]:
            best = {"wall_s": wall, "cpu_s": cpu}
    n = len(items)
    return {**best, "images_per_s": n / best["wall_s"], "images_per_cpu_s": n / best["cpu_s"]}


def clip_pil(processor: Any) -> Callable[[list[bytes], np.ndarray], object]:
    from PIL import Image

    def run(chunk: list[bytes], out: np.ndarray) -> None:
        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in chunk]
        out[:] = processor(images=images, return_tensors="np")["pixel_values"]

    return run


def plot(rows: dict[str, dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    values = [rows[n]["images_per_cpu_s"] for n in names]
    colors = ["#d95f02" if n.startswith("native") else "#7570b3" for n in names]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bars = ax.bar(range(len(names)), values, color=colors)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values])
    ax.set_xticks(range(len(names)), [n.replace(" (", "\n(") for n in names], fontsize=8)
    ax.set_ylabel("images / CPU-second (one core)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="*", type=Path, default=[DEFAULT_CORPUS])
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--repeat", type=int, default=3, help="best of N passes (least CPU time)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cpu-2026-12-02")
    ap.add_argument("--note", default="", help="a remark stored with the results (e.g. how busy the machine was)")
    args = ap.parse_args()

    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from ignite.images.preprocess import ImageSpec, NativePreprocessor, PillowPreprocessor

    items = load(args.corpus, args.limit)
    if not items:
        print(f"no images under {', '.join(map(str, args.corpus))}", file=sys.stderr)
        return 1
    info = machine()
    print(f"CPU: {info['cpu']}, {info['cores']} cores; flags: {' '.join(cpu_flags())}")
    print(f"{len(items)} images ({sum(map(len, items)) / 1e6:.1f} MB encoded), batches of {BATCH}, best of {args.repeat}")
    load_before = os.getloadavg()
    spec = ImageSpec()
    exact, fast = NativePreprocessor(spec, threads=1), NativePreprocessor(spec, threads=1, mode="fast")
    systems: dict[str, Callable[[list[bytes], np.ndarray], object]] = {
        "native exact": exact.process,
        "native fast": fast.process,
        "PillowPreprocessor": PillowPreprocessor(spec).process,
        "CLIPImageProcessorPil": clip_pil(CLIPImageProcessorPil()),
    }
    rows = {name: timed(fn, items, args.repeat) for name, fn in systems.items()}
    every_core = NativePreprocessor(spec, threads=0)
    rows[f"native exact ({every_core.threads} threads)"] = timed(every_core.process, items, args.repeat)
    load_after = os.getloadavg()

    pillow = rows["PillowPreprocessor"]["images_per_cpu_s"]
    clip = rows["CLIPImageProcessorPil"]["images_per_cpu_s"]
    print(f"\n{'':34} {'img/CPU-s':>10} {'img/s wall':>11} {'x Pillow':>9} {'x CLIPPil':>10}")
    for name, r in rows.items():
        r["x_pillow_per_core"] = r["images_per_cpu_s"] / pillow
        r["x_clip_pil_per_core"] = r["images_per_cpu_s"] / clip
        print(f"{name:34} {r['images_per_cpu_s']:10.1f} {r['images_per_s']:11.1f} "
              f"{r['x_pillow_per_core']:8.2f}x {r['x_clip_pil_per_core']:9.2f}x")

    # Fast mode's fidelity on the same images, in 8-bit steps of the resized image.
    n = min(len(items), 512)
    a, b = np.zeros((n, 3, 224, 224), np.float32), np.zeros((n, 3, 224, 224), np.float32)
    exact.process(items[:n], a)
    fast.process(items[:n], b)
    steps = np.abs(a - b) * np.asarray(spec.std, np.float32)[None, :, None, None] * 255
    fidelity = {"images": n, "mean_steps": float(steps.mean()), "max_steps": float(steps.max()),
                "worst_image_mean_steps": float(steps.reshape(n, -1).mean(1).max()),
                "identical_images": int((steps.reshape(n, -1).max(1) == 0).sum())}
    print(f"\nfast vs exact ({n} images, 8-bit steps): mean {fidelity['mean_steps']:.3f}, worst image mean "
          f"{fidelity['worst_image_mean_steps']:.3f}, max {fidelity['max_steps']:.0f}; "
          f"{fidelity['identical_images']} identical (decoded at full scale)")
    goals = {k: {"goal_x": g, "x_pillow": rows[k]["x_pillow_per_core"], "met": rows[k]["x_pillow_per_core"] >= g}
             for k, g in GOALS.items()}
    for k, g in goals.items():
        print(f"goal {k}: >= {g['goal_x']}x Pillow per core: {g['x_pillow']:.2f}x ({'met' if g['met'] else 'NOT met'})")

    args.out.mkdir(parents=True, exist_ok=True)
    result = {"machine": info, "cpu_flags": cpu_flags(), "images": len(items), "batch": BATCH, "repeat": args.repeat,
              "corpus": [str(p) for p in args.corpus], "load_average_before": load_before,
              "load_average_after": load_after, "note": args.note, "results": rows, "goals": goals,
              "fast_fidelity": fidelity}
    (args.out / "image_preprocess.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot({k: v for k, v in rows.items() if "threads" not in k}, args.out / "image_preprocess.png",
         f"decode + CLIP preprocess, one core, {len(items)} photos\n{info['cpu']}, load {load_before[0]:.1f}")
    print(f"\nwrote {args.out / 'image_preprocess.json'} and image_preprocess.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
