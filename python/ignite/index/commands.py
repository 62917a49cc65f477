"""`ignite index merge|info` and `ignite search`, and the `--index*` options of `ignite embed`."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ignite.errors import UsageError
from ignite.index import store


def add_embed_options(parser: argparse.ArgumentParser, size: type) -> None:
    g = parser.add_argument_group("index (FAISS, built while embedding)")
    g.add_argument("--index", type=Path, default=None, metavar="DIR", help="build a FAISS index of the embeddings in DIR")
    g.add_argument("--index-type", default="auto",
                   help="auto | flat | ivf | ivfsq | ivfpq | a FAISS index_factory string (default: auto: exact "
                        "below 200K records, then IVF, compressed as --index-memory requires)")
    g.add_argument("--index-memory", type=size, default=8_000_000_000, metavar="BYTES",
                   help="memory budget for the index, e.g. 8GB (default)")
    g.add_argument("--index-shard-size", type=size, default=10_000_000, metavar="N",
                   help="vectors per index shard (default 10M)")
    parser.set_defaults(index_trained=None)  # with --shard: the folder of `ignite index train`


def add_on_disk_options(parser: argparse.ArgumentParser) -> None:
    """--on-disk / --in-ram: where a merge puts the merged index's inverted lists."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--on-disk", dest="on_disk", action="store_true", default=None,
                       help="IVF only: inverted lists in merged.ivfdata, memory-mapped when searched (default: on "
                            "disk when the shards take more than half the available memory)")
    where.add_argument("--in-ram", dest="on_disk", action="store_false", help="merge in RAM")


def add_parsers(sub: argparse._SubParsersAction, add_model_options: Callable[[argparse.ArgumentParser], None],
                size: type) -> None:
    idx = sub.add_parser("index", help="train, inspect or merge an index built by `ignite embed --index`",
                         description="Train, inspect or merge an index folder built by `ignite embed --index DIR`.")
    verbs = idx.add_subparsers(dest="index_command", metavar="VERB", required=True, parser_class=sub._parser_class)
    train = verbs.add_parser("train", help="train the index once for the shards of `ignite embed --shard`",
                             description="Train the coarse quantizer on a uniform sample across all inputs and save "
                                         "it empty in --index IDX; every `ignite embed --shard ... --index IDX` then "
                                         "fills a clone of it and `ignite merge` joins them.")
    train.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH", help="as for `ignite embed`")
    train.add_argument("--field", default="text", help="JSONL/Parquet field with the text (default: text)")
    train.add_argument("--overwrite", action="store_true", help="replace an index already in IDX")
    add_model_options(train)
    add_embed_options(train, size)
    train.set_defaults(func=_cmd_train)
    merge = verbs.add_parser("merge", help="merge the shards into merged.faiss (checks fingerprints and counts)")
    merge.add_argument("folder", type=Path)
    add_on_disk_options(merge)
    merge.set_defaults(func=_cmd_merge)
    info = verbs.add_parser("info", help="type, count, shards and recall of an index")
    info.add_argument("folder", type=Path)
    info.add_argument("--json", action="store_true", help="print index.json as is")
    info.set_defaults(func=_cmd_info)

    s = sub.add_parser("search", help="search an index with query text",
                       description="Embed queries with the index's model (and its query prompt) and print the "
                                   "nearest records: rank, score, id and text when the source is at hand.")
    s.add_argument("query", nargs="?", help="query text (with a CLIP index: embedded by its text tower)")
    s.add_argument("--query-image", type=Path, nargs="+", default=None, metavar="PATH",
                   help="search by image(s), embedded by the vision tower of the index's CLIP model")
    s.add_argument("--index", type=Path, required=True, metavar="DIR")
    s.add_argument("-k", type=int, default=10, help="neighbours per query (default 10)")
    s.add_argument("--queries", type=Path, default=None, help="JSONL file of queries with id and text")
    s.add_argument("--output", type=Path, default=None, help="write hits to this .parquet (query_id, rank, score, id, text)")
    s.add_argument("--model", default=None, help="override the model recorded in the index")
    s.add_argument("--nprobe", type=int, default=None, help="IVF lists to visit (default: the tuned value)")
    s.set_defaults(func=_cmd_search)


def _cmd_train(args: argparse.Namespace) -> int:
    from ignite.index.distributed import train_from_args

    if args.index is None:
        raise UsageError("ignite index train: give the folder to train into with --index IDX")
    return train_from_args(args)


def _cmd_merge(args: argparse.Namespace) -> int:
    path = store.merge(args.folder, args.on_disk)
    info = store.read_info(args.folder)
    where = f"{path} + {store.IVFDATA} (on disk)" if info["merged"]["on_disk"] else str(path)
    print(f"ignite: merged {info['count']:,} vectors into {where}", file=sys.stderr)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    info = store.read_info(args.folder)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    recall = info.get("recall") or {}
    rows = [
        ("type", info["factory"]), ("metric", info["metric"]), ("dim", info["dim"]), ("vectors", f"{info['count']:,}"),
        ("shards", f"{len(info['shards'])} ({', '.join(s['file'] for s in info['shards'])})"),
        ("merged", (info["merged"]["file"] + (" (lists on disk)" if info["merged"].get("on_disk") else ""))
         if info.get("merged") else "no"),
        ("complete", "yes" if info.get("complete") else "no (run interrupted)"),
        ("nprobe", info.get("nprobe", 0)),
        ("recall@10", f"{recall['recall_at_10']:.4f} on {recall['queries']} held-out queries"
         if "recall_at_10" in recall else "not measured"),
        ("model", (info.get("embedding") or {}).get("model", "?")),
        ("build seconds", info.get("build_seconds")),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _read_queries(path: Path) -> list[tuple[str, str]]:
    import orjson

    if not path.is_file():
        raise UsageError(f"--queries file {path} does not exist")
    out = []
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            out.append((str(obj.get("id", n)), str(obj["text"])))
        except (orjson.JSONDecodeError, KeyError, AttributeError):
            raise UsageError(f"{path}:{n}: expected a JSON object with \"text\" (and \"id\")") from None
    return out


def _cmd_search(args: argparse.Namespace) -> int:
    from ignite.hardware import usable_cores
    from ignite.search import run_search

    if sum(x is not None for x in (args.query, args.queries, args.query_image)) != 1:
        raise UsageError("give one of a query text, --queries FILE or --query-image PATH")
    if args.output is not None and args.output.suffix != ".parquet":
        raise UsageError("--output must end in .parquet")
    if args.query_image is not None:
        queries = [(str(p), str(p)) for p in args.query_image]
    else:
        queries = _read_queries(args.queries) if args.queries else [("q", args.query)]
    hits = run_search(args.index, queries, args.k, args.model, usable_cores(), args.nprobe,
                      images=args.query_image is not None)
    if args.output is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({key: [h[key] for h in hits] for key in ("query_id", "rank", "score", "id", "text")})
        table = table.set_column(3, "id", pa.array([None if h["id"] is None else str(h["id"]) for h in hits],
                                                   pa.string()))
        pq.write_table(table, args.output)
        print(f"ignite: wrote {len(hits)} hits for {len(queries)} queries to {args.output}", file=sys.stderr)
        return 0
    print("query\trank\tscore\tid\ttext")
    for h in hits:
        text = (h["text"] or "").replace("\t", " ").replace("\n", " ")
        print(f"{h['query_id']}\t{h['rank']}\t{h['score']:.4f}\t{h['id']}\t{text[:160]}")
    return 0
