"""Native reader vs the Python reader (zstandard + orjson), records/s on one core, field and id
extraction included: each system turns a JSONL file into RawWindows with ignite's RecordReader
(IGNITE_READER=native or python), so both do the same work down to the status of every record.
Also the native reader alone (ignite._engine.NativeReader windows, no RawWindow wrapping).

    python benchmarks/reader_speed.py CORPUS.jsonl.zst [MORE ...] [--field text] [--id-field id]
        [--window 65536] [--repeat 3] [--json PATH]

Each .zst corpus is also measured decompressed (a plain copy in the temp directory). The process
is pinned to one CPU; the systems take turns and the best of --repeat runs counts. MB/s is of the
file as stored (compressed bytes for .zst). Any JSONL corpus works, e.g. the passages
corpus built from Debian's documentation packages (see ../shared/data/README.md)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine  # noqa: E402


def run_reader(path: Path, mode: str, field: str, id_field: str | None, window: int) -> tuple[float, int]:
    from ignite.io.inputs import expand_inputs
    from ignite.io.readers import RecordReader

    os.environ["IGNITE_READER"] = mode
    item = expand_inputs([str(path)])[0]
    start = time.perf_counter()
    records = sum(len(w.texts) for w in RecordReader(item, field, id_field, window).windows())
    return time.perf_counter() - start, records


def run_native_only(path: Path, field: str, id_field: str | None, window: int) -> tuple[float, int]:
    from ignite._engine import NativeReader
    from ignite.io.inputs import expand_inputs

    item = expand_inputs([str(path)])[0]
    start = time.perf_counter()
    reader = NativeReader(str(path), item.compression or "none", item.format, field, id_field, window)
    records = 0
    while (got := reader.next_window()) is not None:
        records += len(got[3])
    return time.perf_counter() - start, records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpora", nargs="+", type=Path)
    ap.add_argument("--field", default="text")
    ap.add_argument("--id-field", default="id")
    ap.add_argument("--window", type=int, default=65536)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    from ignite.io.readers import native_reader_available

    if not native_reader_available():
        sys.exit("ignite._engine was built without the native reader (needs zstd, zlib and simdjson)")
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    tmp = Path(tempfile.mkdtemp(prefix="ignite-reader-speed-"))
    inputs: list[tuple[str, Path]] = []
    for corpus in args.corpora:
        inputs.append((corpus.name, corpus))
        if corpus.suffix == ".zst":
            import zstandard

            plain = tmp / corpus.name.removesuffix(".zst")
            with open(corpus, "rb") as src, open(plain, "wb") as dst:
                zstandard.ZstdDecompressor().copy_stream(src, dst)
            inputs.append((f"{plain.name} (plain copy)", plain))

    systems = {
        "python (zstandard+orjson)": lambda p: run_reader(p, "python", args.field, args.id_field, args.window),
        "native (RecordReader)": lambda p: run_reader(p, "native", args.field, args.id_field, args.window),
        "native (NativeReader only)": lambda p: run_native_only(p, args.field, args.id_field, args.window),
    }
    rows = []
    for name, path in inputs:
        # Systems take turns within each repeat, so a busy moment of the machine hits them alike.
        times: dict[str, list[tuple[float, int]]] = {system: [] for system in systems}
        for _ in range(args.repeat):
            for system, run in systems.items():
                times[system].append(run(path))
        for system, runs in times.items():
            best, records = min(runs)
            rows.append({"input": name, "bytes": path.stat().st_size, "system": system, "records": records,
                         "seconds": best, "records_per_s": records / best, "mb_per_s": path.stat().st_size / best / 1e6})
        base = next(r for r in rows if r["input"] == name and r["system"].startswith("python"))
        for r in rows:
            if r["input"] == name:
                r["speedup"] = r["records_per_s"] / base["records_per_s"]

    print(f"{'input':<40} {'system':<28} {'records':>9} {'records/s':>12} {'MB/s':>8} {'x python':>9}")
    for r in rows:
        print(f"{r['input']:<40} {r['system']:<28} {r['records']:>9} {r['records_per_s']:>12,.0f} "
              f"{r['mb_per_s']:>8.1f} {r['speedup']:>9.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "cores_used": 1, "window": args.window,
                                         "field": args.field, "id_field": args.id_field, "results": rows}, indent=2))
    for _, path in inputs:
        if path.parent == tmp:
            path.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
