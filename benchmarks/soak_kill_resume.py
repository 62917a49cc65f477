"""Soak test of crash safety and output ownership (not run in CI: it takes minutes).

Cycles of: start `ignite embed --resume` on 20,000 records (the crash-safety corpus of
tests/resumekit.py: plain JSONL with bad records, multi-frame .zst, .txt.gz), sometimes with a
second identical run started beside it, SIGKILL the writer at a random moment, and start again;
a run that finishes is compared with an uninterrupted one, then the next episode starts afresh.
Counts rows lost, duplicated and misaligned (ids out of place), embeddings off (cosine < 0.9999)
and competitors that were not refused; prints a table and writes JSON.

    python benchmarks/soak_kill_resume.py --kills 100 --json benchmarks/results/DATE/soak_kill_resume.json
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import machine
from resumekit import (
    build_tiny_model,
    embed_args,
    make_corpus,
    manifest,
    start_cli,
    wait_for_pipeline,
)

log = logging.getLogger("soak")


def _compare(out: Path, ref: Path) -> dict[str, float]:
    def records(npy: Path) -> list[tuple]:  # (id, file, line): which input record each row holds
        meta = pq.read_table(npy.with_name("emb.ids.parquet"), columns=["id", "file", "line"]).to_pydict()
        return list(zip(meta["id"], meta["file"], meta["line"]))

    ids_out, ids_ref = records(out), records(ref)
    a, b = np.load(out), np.load(ref)
    n = min(len(a), len(b))
    nonzero = np.any(b[:n] != 0, axis=1)
    num = (a[:n] * b[:n]).sum(1)
    den = np.linalg.norm(a[:n], axis=1) * np.linalg.norm(b[:n], axis=1)
    cos = np.where(nonzero, num / np.maximum(den, 1e-12), 1.0)
    return {
        "rows": len(a),
        "lost": len(set(ids_ref) - set(ids_out)),
        "duplicated": len(ids_out) - len(set(ids_out)),
        "misaligned": sum(x != y for x, y in zip(ids_out, ids_ref)) + abs(len(ids_out) - len(ids_ref)),
        "embeddings_off": int((cos < 0.9999).sum()),
        "min_cosine": float(cos.min()) if n else 1.0,
    }


def _reference(base: Path, corpus: list[Path], model: Path, cache: Path) -> tuple[Path, float]:
    """An uninterrupted run, and its seconds from the model loaded to the end (where kills aim)."""
    out = base / "reference" / "emb.npy"
    out.parent.mkdir()
    run_log = base / "reference.log"
    proc = start_cli(embed_args(corpus, out, model), cache, run_log)
    if not wait_for_pipeline(proc, run_log, timeout=600):
        raise SystemExit(f"the reference run failed: {run_log.read_text()[-2000:]}")
    began = time.monotonic()
    if proc.wait() != 0:
        raise SystemExit(f"the reference run failed: {run_log.read_text()[-2000:]}")
    return out, time.monotonic() - began


def soak(kills: int, records: int, seed: int, competitor_share: float, base: Path) -> dict:
    rng = random.Random(seed)
    cache = base / "cache"
    model = build_tiny_model(base / "tiny-model")
    corpus = make_corpus(base / "corpus", records, seed)
    ref, span = _reference(base, corpus, model, cache)
    total = len(np.load(ref))
    landed: list[dict] = []
    episodes: list[dict] = []
    competitors = {"started": 0, "refused": 0, "other": 0}
    episode = 0
    while len(landed) < kills:
        episode += 1
        folder = base / f"episode{episode}"
        folder.mkdir()
        out = folder / "emb.npy"
        for attempt in range(1000):
            before = (manifest(out) or {}).get("rows", 0)
            run_log = folder / f"run{attempt}.log"
            proc = start_cli(embed_args(corpus, out, model, "--resume"), cache, run_log)
            rival = None
            delay = rng.uniform(0, 0.2 + 1.1 * span * (1 - before / total))
            if wait_for_pipeline(proc, run_log, timeout=600):  # from here on it holds the output
                if rng.random() < competitor_share:  # the same command again, as a requeued task would
                    rival = start_cli(embed_args(corpus, out, model, "--resume"), cache,
                                      folder / f"rival{attempt}.log")
                    competitors["started"] += 1
                time.sleep(delay)
            killed = proc.poll() is None
            if killed:
                proc.kill()
            proc.wait()
            if rival is not None:
                code = rival.wait()
                text = (folder / f"rival{attempt}.log").read_text()
                # Refused while the writer held the output, or (once it had ended) resumed or found it done.
                competitors["refused" if code == 2 and "is being written by" in text else "other"] += 1
                if code not in (0, 2, -9):
                    raise SystemExit(f"a competing run failed with {code}: {text[-2000:]}")
            if killed:
                after = (manifest(out) or {}).get("rows", total if out.exists() else 0)
                landed.append({"episode": episode, "delay": round(delay, 3), "rows_before": before,
                               "rows_after": after})
                if len(landed) % 10 == 0:
                    log.info("%d kills landed", len(landed))
                continue
            if proc.returncode != 0:
                raise SystemExit(f"a resumed run failed with {proc.returncode}: {run_log.read_text()[-2000:]}")
            break
        episodes.append({"episode": episode, "kills": sum(k["episode"] == episode for k in landed),
                         **_compare(out, ref)})
    return {"records": total, "kills": landed, "episodes": episodes, "competitors": competitors,
            "reference_seconds": round(span, 2)}


def main() -> int:
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=100, help="SIGKILLs that must land mid-run (default 100)")
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=20_261_201)
    p.add_argument("--competitors", type=float, default=0.3, help="share of starts with a second run beside it")
    p.add_argument("--json", type=Path, default=None, help="write the result here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ignite-soak-") as tmp:
        result = soak(args.kills, args.records, args.seed, args.competitors, Path(tmp))
    totals = {k: sum(e[k] for e in result["episodes"]) for k in ("lost", "duplicated", "misaligned", "embeddings_off")}
    result["machine"] = machine()
    result["totals"] = totals
    mid = sum(0 < k["rows_after"] < result["records"] for k in result["kills"])
    print(f"\nmachine: {result['machine']['cpu']}, {result['machine']['cores']} cores")
    print("| kills landed | of them mid-run | finished runs | rows lost | duplicated | misaligned | "
          "embeddings off | competitors refused / started |")
    print("|---|---|---|---|---|---|---|---|")
    c = result["competitors"]
    print(f"| {len(result['kills'])} | {mid} | {len(result['episodes'])} | {totals['lost']} | {totals['duplicated']} | "
          f"{totals['misaligned']} | {totals['embeddings_off']} | {c['refused']} / {c['started']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if not any(totals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
