"""`ignite tokenize`: the embedding path's reader and tokenizer, writing per record `id`,
`n_tokens` (before truncation), `truncated` and `input_ids` (after truncation) to parquet, and a
summary to size a job. Also how parity with HF tokenizers is checked from the command line."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ignite.errors import UsageError

log = logging.getLogger("ignite")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenize", help="tokenize the inputs as `embed` would and write token ids to parquet",
                       description="Tokenize every record exactly as `ignite embed` would, write id, n_tokens "
                                   "(before truncation), truncated and input_ids, and print length percentiles.")
    p.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH")
    p.add_argument("--output", "-o", type=Path, required=True, help="OUT.parquet")
    p.add_argument("--model", "-m", default=None)
    p.add_argument("--field", default="text")
    p.add_argument("--id-field", default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--prefix", default=None)
    p.add_argument("--threads", type=int, default=0, help="tokenizer threads (default: all cores)")
    p.add_argument("--hf", action="store_true", help="use HF tokenizers instead of the native path (for comparison)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ignite.io.inputs import expand_inputs
    from ignite.io.readers import RecordReader
    from ignite.models import DEFAULT_MODEL, load_spec, resolve_model
    from ignite.pipeline.tokenize import WindowTokenizer
    from ignite.rows.status import OK, status_names

    if args.output.suffix != ".parquet":
        raise UsageError(f"--output {args.output}: give a .parquet path")
    if not args.output.parent.exists():
        raise UsageError(f"output folder {args.output.parent} does not exist; create it first")
    files = expand_inputs(args.input)
    name = args.model or DEFAULT_MODEL
    spec = load_spec(resolve_model(name), name)
    max_length = args.max_length or spec.max_length
    tok = WindowTokenizer(spec.tokenizer_path, max_length, args.prefix or "", threads=args.threads,
                          native=not args.hf)
    schema = pa.schema([("id", pa.string() if args.id_field else pa.int64()), ("n_tokens", pa.int32()),
                        ("truncated", pa.bool_()), ("input_ids", pa.list_(pa.int32())), ("status", pa.string())])
    start = time.perf_counter()
    lengths: list[np.ndarray] = []
    row = 0
    tmp = args.output.with_name(args.output.name + ".partial")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for item in files:
            for window in RecordReader(item, args.field, args.id_field, 65536).windows():
                n = len(window.texts)
                ok = window.status == OK
                ids, offsets, counts = tok.encode_counts([t if o else "" for t, o in zip(window.texts, ok)])
                counts = np.where(ok, counts, 0)
                # Records that could not be read get no tokens, like their zero rows in `embed`.
                keep = np.repeat(ok, np.diff(offsets))
                offsets = np.concatenate([[0], np.cumsum(np.where(ok, np.diff(offsets), 0))])
                lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(ids[keep]))
                id_col = pa.array(window.ids, pa.string()) if args.id_field else pa.array(np.arange(row, row + n))
                writer.write_table(pa.table({
                    "id": id_col, "n_tokens": pa.array(counts.astype(np.int32)),
                    "truncated": pa.array(counts > max_length), "input_ids": lists,
                    "status": pa.array(status_names(window.status), pa.string())}, schema=schema))
                lengths.append(counts[ok])
                row += n
    tmp.replace(args.output)
    seconds = time.perf_counter() - start
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    if len(all_lengths):
        p50, p90, p99 = np.percentile(all_lengths, [50, 90, 99])
        print(f"records {row:,} (tokenized {len(all_lengths):,}), tokens {int(all_lengths.sum()):,} before "
              f"truncation, length p50 {p50:.0f} p90 {p90:.0f} p99 {p99:.0f} max {int(all_lengths.max())}, "
              f"truncated at {max_length}: {np.mean(all_lengths > max_length):.2%}; {tok.path}, "
              f"{row / seconds:,.0f} records/s -> {args.output}", file=sys.stderr)
    else:
        print(f"records {row:,}, none tokenized -> {args.output}", file=sys.stderr)
    return 0
