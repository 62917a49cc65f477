"""`ignite` command line. User mistakes become one-line errors with exit code 2; no traceback."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from ignite import __version__
from ignite.errors import IgniteError, UsageError

log = logging.getLogger("ignite")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TOO_MANY_ERRORS, EXIT_DAMAGED_INPUT = 0, 1, 2, 3, 4

EXIT_INTERRUPTED = 128  # + the signal: 130 SIGINT, 143 SIGTERM

EPILOG = """exit codes: 0 done and the finished files verified (bad records, if any, are listed and
kept as zero rows); 1 run failed (I/O such as a full disk, backend, or finished files that failed
verification; what was committed holds: rerun with --resume); 2 usage error, another run is
writing the same output (see --wait), an input changed while it was read, or --resume refused
because the inputs or an output-changing option differ from the interrupted run; 3 more bad records than --max-errors; 4 an input file is damaged (outputs hold the records
read before the damage); 130/143 interrupted by SIGINT/SIGTERM after committing the windows in
flight (a second signal exits at once; the last commit holds): rerun with --resume.

one writer per output: a run locks OUT (through OUT.ignite.lock beside it, released by the kernel
if the process dies) and its --errors file and --index folder for its whole life.

crash safety: progress is committed window by window in OUT.ignite/ beside the output; finished
files appear only at the end. After a crash, kill or signal, rerun the same command with --resume:
it checks that the inputs and options are unchanged, skips what was committed and continues.
--resume is safe on a first run too."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the fix."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _size(text: str) -> int:
    units = {"k": 1e3, "m": 1e6, "g": 1e9, "kb": 1e3, "mb": 1e6, "gb": 1e9}
    t = text.strip().lower()
    for suffix in sorted(units, key=len, reverse=True):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * units[suffix])
    return int(t)


def _positive(text: str) -> int:
    value = _size(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:  # refuses nan too
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _seconds_or_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # refuses nan too
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, not {text!r}")
    return value


def _embed_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed", help="embed every record of the input files into an output file",
        description="Embed every record of the inputs, in order: row i of the output is record i of the "
                    "input. Records that cannot be embedded keep their row (zeros) and a status.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("input and output")
    io.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH",
                    help="files, folders or quoted globs: .jsonl, .txt (one record a line), .parquet; "
                         ".zst/.gz compression by extension; images and .tar shards (see images below)")
    io.add_argument("--output", "-o", required=True, type=Path, metavar="OUT",
                    help="OUT.npy (+ OUT.ids.parquet beside it), OUT.parquet (id, embedding), "
                         "or a folder of shards")
    io.add_argument("--field", default="text", help="JSONL/Parquet field with the text; dots for nested keys "
                                                     "(default: text)")
    io.add_argument("--id-field", default=None, help="field with the record id (default: the record's position)")
    io.add_argument("--output-dtype", choices=("float32", "float16"), default="float32")
    io.add_argument("--shard-rows", type=_positive, default=1_000_000, help="rows per shard for a folder output")
    io.add_argument("--overwrite", action="store_true",
                    help="replace existing outputs, discarding an interrupted run's progress")
    io.add_argument("--resume", action="store_true",
                    help="continue an interrupted run from its last commit (refused if the inputs or options "
                         "changed); starts a new run when there is none, so it is safe to always pass")
    io.add_argument("--wait", action="store_true",
                    help="when another run writes the same output, wait for it to end instead of exiting 2 "
                         "(for restart policies)")
    io.add_argument("--errors", type=Path, default=None, metavar="FILE",
                    help="write one JSON line per bad record (file, line, row, id, reason)")
    io.add_argument("--max-errors", type=int, default=None, metavar="N", help="abort past N bad records")
    io.add_argument("--commit-interval", type=_seconds_or_zero, default=1.0, metavar="SECONDS",
                    help="commit progress (fsync the outputs, rewrite the manifest) at most this often; a kill "
                         "loses at most this much finished work (default: 1; 0: every window; raise it where "
                         "fsync is slow, as on network file systems)")
    add_model_options(p)
    from ignite.images.options import add_embed_options as add_image_options

    add_image_options(p, _size)
    from ignite.index.commands import add_embed_options

    add_embed_options(p, _size)
    from ignite.shards.run import add_embed_options as add_shard_options

    add_shard_options(p)
    w = p.add_argument_group("monitoring", "Every run writes OUT.report.json beside the output (see `ignite report`).")
    w.add_argument("--metrics-port", type=_port, default=None, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (0: any free port, logged; "
                        "default: $IGNITE_METRICS_PORT, else none)")
    w.add_argument("--metrics-file", type=Path, default=None, metavar="PATH",
                   help="write the same metrics to PATH every few seconds, atomically, for node_exporter's "
                        "textfile collector (name it *.prom)")
    w.add_argument("--metrics-file-interval", type=_seconds, default=5.0, metavar="SECONDS",
                   help="how often --metrics-file is rewritten (default: 5)")
    p.set_defaults(func=_cmd_embed)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The model and runtime options of `ignite embed`, shared by `ignite index train`."""
    m = p.add_argument_group("model")
    m.add_argument("--model", "-m", default=None, help="model name or path (default: "
                   "sentence-transformers/all-MiniLM-L6-v2); resolved offline")
    m.add_argument("--pooling", choices=("mean", "cls", "max", "lasttoken", "mean_sqrt_len"), default=None,
                   help="override the model's pooling")
    m.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="L2-normalise embeddings (default: as the model says)")
    m.add_argument("--max-length", type=_positive, default=None, help="truncate to N tokens (default: the model's)")
    m.add_argument("--prefix", default=None, help="literal text put before every record (e.g. 'passage: ')")
    m.add_argument("--prompt-name", default=None, help="a prompt from the model's config (e.g. query, passage)")
    m.add_argument("--dim", type=_positive, default=None, help="keep the first N dimensions (Matryoshka) and "
                                                                "renormalise")
    r = p.add_argument_group("runtime")
    r.add_argument("--backend", choices=("auto", "tensorrt", "torch", "openvino", "onnxruntime"), default="auto",
                   help="auto: tensorrt, torch on CUDA; on a CPU openvino, then torch (bf16) or onnxruntime (fp32)")
    r.add_argument("--dtype", choices=("auto", "fp32", "bf16", "fp16", "int8"), default="auto",
                   help="compute precision; auto: on a GPU bf16, on a CPU the fastest pair that stays within cosine "
                        "0.999 of fp32, measured once per machine and model and cached; int8: on OpenVINO, the faster "
                        "faithful of NNCF static quantization calibrated on your first records and int8 weights "
                        "with dynamic activations, its cosine and recall@10 to fp32 said every run (CPU only, "
                        "never chosen for you)")
    r.add_argument("--gpus", default="all", help="all | none | comma-separated indices (default: all)")
    r.add_argument("--batch-tokens", type=_positive, default=None,
                   help="padded tokens per batch (default: 2048 on CPU, 65536 on GPU)")
    r.add_argument("--window-records", type=_positive, default=None,
                   help="records per window, the unit of sorting and of commits (default: 2048 on CPU, 16384 on GPU)")
    r.add_argument("--tokenizer-threads", type=_positive, default=None,
                   help="threads of the native tokenizer (default: 1 on CPU, where the backend keeps the other "
                        "cores; all cores but two on GPU, where they feed the devices)")
    r.add_argument("--threads", type=_positive, default=None, help="CPU threads for the backend (default: all)")
    r.add_argument("--cache-dir", type=Path, default=None, help="ONNX/engine cache (default: ~/.cache/ignite, "
                                                                 "or $IGNITE_CACHE)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _doctor_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="what this machine can use, and what --backend auto would pick",
                       description="Print the devices, libraries and backends Ignite can use here.")
    p.set_defaults(func=_cmd_doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ignite", description="Ignite: file-to-file embedding engine. "
                     "Start with `ignite embed --input corpus.jsonl.zst --output emb.npy`.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ignite {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _embed_parser(sub)
    from ignite.index.commands import add_parsers as add_index_parsers

    add_index_parsers(sub, add_model_options, _size)
    from ignite.tokenize_cmd import add_parser as add_tokenize_parser

    add_tokenize_parser(sub)
    from ignite.shards.commands import add_parsers as add_shard_parsers

    add_shard_parsers(sub)
    from ignite.report_cmd import add_parser as add_report_parser

    add_report_parser(sub)
    _doctor_parser(sub)
    return parser


def _cmd_embed(args: argparse.Namespace) -> int:
    from ignite.pipeline.signals import Interrupted, StopSignals

    stop = StopSignals()  # before the heavy imports: a signal while they run exits 128 + signum
    stop.install()
    try:
        # The output is locked before the heavy imports, so a second run on it is refused at once
        # and nothing is looked at, let alone touched, while another process may be writing.
        from ignite.io.lock import OutputLocks, lock_targets
        from ignite.shards.env import shard_paths

        shard_paths(args)  # --shard: this task's output, --errors and --index, which are what it locks

        with OutputLocks(lock_targets(args.output, args.errors, args.index)).acquire(wait=args.wait):
            from ignite.embed import embed_from_args

            return embed_from_args(args, stop)
    except Exception as exc:
        if stop.signum is not None and stop.phase == "setup":
            # The signal surfaced as another error (an extension's import wraps it in ImportError).
            raise Interrupted(stop.signum) from exc
        raise


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ignite.doctor import doctor

    return doctor()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(format="ignite: %(levelname)s: %(message)s" if os.environ.get("IGNITE_DEBUG")
                        else "ignite: %(message)s", level=logging.INFO, stream=sys.stderr)
    for noisy in ("transformers", "torch", "onnxruntime", "urllib3", "filelock", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.verbose:
            logging.getLogger().setLevel(logging.DEBUG)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return int(args.func(args))
    except IgniteError as exc:
        print(f"ignite: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # a signal before anything of this run was committed
        print(f"ignite: {exc or 'interrupted'}; rerun with --resume to continue", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_INTERRUPTED + 2))
