"""One index over many array tasks: `ignite index train` trains the coarse quantizer once on a
uniform sample across all inputs and saves it empty (IDX/trained.faiss, with held-out recall
queries); each shard run clones it into IDX/<shard>/ with its local rows as ids; `ignite merge`
lists every shard's index files in IDX/index.json with the shard's global row offset, merges
them (ids = global rows) and measures recall against exact search over the merged embeddings."""
from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ignite.errors import UsageError
from ignite.index import store
from ignite.index.builder import QUERIES, IndexBuilder, add_exact, exact_heap, tune_nprobe
from ignite.index.plan import IndexPlan

log = logging.getLogger("ignite")


def _model_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """What the vectors depend on: the model, its options and the text field (not the output)."""
    emb = metadata.get("embedding") or {}
    return {k: emb.get(k) for k in ("model", "options", "field")}


def train_from_args(args: argparse.Namespace) -> int:
    from ignite.backends import open_backend
    from ignite.config import default_cache_dir
    from ignite.embed import CPU_BATCH_TOKENS, GPU_BATCH_TOKENS, model_options
    from ignite.hardware import select_gpus, usable_cores
    from ignite.index.inline import prepare_index
    from ignite.io.inputs import expand_inputs
    from ignite.models import DEFAULT_MODEL, load_spec, resolve_model
    from ignite.pipeline.tokenize import WindowTokenizer

    files = expand_inputs(args.input)
    model_name = args.model or DEFAULT_MODEL
    spec = load_spec(resolve_model(model_name), model_name)
    options = model_options(spec, args)
    metadata = {"embedding": {"model": model_name, "options": dataclasses.asdict(options), "field": args.field},
                "inputs": [[str(f.path.resolve()), f.size] for f in files], "row_metadata": []}
    if (args.index / store.INFO).exists() and not args.overwrite:
        info = store.read_info(args.index)
        if info.get("trained") and _model_of(info) == _model_of(metadata) and info.get("inputs") == metadata["inputs"]:
            # A requeued or repeated train step must not retrain under shards already filling clones.
            log.info("%s is already trained for these inputs and model; nothing to do", args.index)
            return 0
        raise UsageError(f"{args.index} already holds an index of other inputs or options; pass --overwrite to "
                         f"train it again (shards filled from the old one then no longer merge)")
    device = (select_gpus(args.gpus) or [None])[0]
    batch_tokens = args.batch_tokens or (GPU_BATCH_TOKENS if device is not None else CPU_BATCH_TOKENS)
    runner = open_backend(args.backend, args.dtype, spec, options, args.cache_dir or default_cache_dir(),
                          args.threads or usable_cores(), device=device, batch_tokens=batch_tokens)
    tokenizer = WindowTokenizer(spec.tokenizer_path, options.max_length, options.prefix,
                                threads=args.tokenizer_threads or 1)
    builder = prepare_index(args.index, args.index_type, args.index_memory, args.index_shard_size, files,
                            args.field, tokenizer, runner, batch_tokens, 1 if runner.device == "cpu" else 8, metadata)
    builder.save_trained()
    log.info("trained %s in %s; give it to every shard as --index %s, then `ignite merge OUT`",
             builder.plan.factory, args.index, args.index)
    return 0


def _trained_info(folder: Path) -> dict[str, Any]:
    info = store.read_info(folder)
    if not info.get("trained"):
        raise UsageError(f"{folder} is not a trained index: with --shard, --index names the folder of "
                         f"`ignite index train --input ... --index {folder}`, run first")
    return info


def load_trained(trained: Path, folder: Path, shard_size: int, metadata: dict[str, Any]) -> IndexBuilder:
    """A builder in `folder` that fills a clone of the index trained in `trained`."""
    import faiss

    info = _trained_info(trained)
    if _model_of(info) != _model_of(metadata):
        raise UsageError(f"the index in {trained} was trained on embeddings of {_model_of(info)}, this run makes "
                         f"{_model_of(metadata)}; train it with the same --model, options and --field")
    t = info["trained"]
    builder = IndexBuilder(folder, IndexPlan(**t["plan"]), info["dim"], shard_size, metadata)
    builder.adopt(faiss.read_index(str(trained / t["file"])), info["fingerprint"])
    return builder


def merge_shard_indexes(idx: Path, shards: list[tuple[Path, int]], vectors: Iterable[tuple[np.ndarray, np.ndarray]],
                        metadata: dict[str, Any], on_disk: bool | None) -> dict[str, Any]:
    """Merge the shard index folders (folder, global row offset) into `idx`; `vectors` yields
    (global rows, embeddings) of every row, for the exact neighbours of the recall queries."""
    info = _trained_info(idx)
    entries = []
    for folder, offset in shards:
        part = store.read_info(folder)
        if not part.get("complete"):
            raise UsageError(f"the index of {folder.name} is unfinished ({folder}); rerun that shard with --resume")
        if part["fingerprint"] != info["fingerprint"]:
            raise UsageError(f"the index of {folder.name} comes from another training (fingerprint "
                             f"{part['fingerprint']}, {idx} has {info['fingerprint']}); redo that shard")
        entries += [{**e, "file": f"{folder.name}/{e['file']}", "row_offset": offset} for e in part["shards"]]
    info.update(metadata, shards=entries, count=sum(e["count"] for e in entries), complete=True, merged=None)
    store.write_info(idx, info)
    store.merge(idx, on_disk)
    info = store.read_info(idx)
    data = np.load(idx / QUERIES)
    queries, rows = np.ascontiguousarray(data["vectors"], dtype=np.float32), data["rows"]
    if len(rows):
        truth = exact_heap(len(rows))
        for chunk_rows, chunk in vectors:
            add_exact(truth, queries, chunk_rows, np.ascontiguousarray(chunk, dtype=np.float32))
        report = tune_nprobe(idx, queries, rows, truth, IndexPlan(**info["trained"]["plan"]).nlist)
        info.update(recall=report, nprobe=report["nprobe"])
        store.write_info(idx, info)
    return info
