"""Set up the inline index before the pipeline starts: one quick pass over the inputs counts
the records and draws a uniform sample (index/sample.py) across all of them; the sample is
embedded to train the coarse quantizer and to serve as recall queries."""
from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ignite.backends.base import Runner
from ignite.images.records import ImageRecords
from ignite.index.builder import IndexBuilder
from ignite.index.plan import plan_index
from ignite.index.sample import Reservoir
from ignite.io.inputs import InputFile
from ignite.io.readers import RecordReader
from ignite.pipeline.encode import embed_images, embed_texts
from ignite.pipeline.tokenize import WindowTokenizer
from ignite.rows.status import OK
from ignite.rows.window import utf8_arena

if TYPE_CHECKING:
    from ignite.pipeline.images import ImageFeed

log = logging.getLogger(__name__)

RECALL_QUERIES = 500
SAMPLE_CAP = 1 << 20  # texts kept by the pre-pass (~0.5 GB at most)
SEED = 0


def sample_records(files: list[InputFile], field: str, size: int, seed: int = SEED) -> Reservoir:
    """A uniform sample of `size` readable records of `files` (with their count), drawn per
    window: the native reader's windows reach the sample as UTF-8 arenas, no Python per record."""
    reservoir = Reservoir(size, seed)
    for item in files:
        for window in RecordReader(item, field, None, 65536).windows():
            text_bytes, offsets = window.text_bytes, window.text_offsets
            if text_bytes is None or offsets is None:  # the Python reader's windows (parquet, fallback)
                text_bytes, offsets = utf8_arena(window.texts)
            reservoir.add(text_bytes, offsets, np.asarray(window.status) == OK)
    return reservoir


def prepare_index(folder: Path, kind: str, memory_bytes: int, shard_size: int, files: list[InputFile], field: str,
                  tokenizer: WindowTokenizer, runner: Runner, batch_tokens: int, pad_multiple: int,
                  metadata: dict, trained: Path | None = None) -> IndexBuilder:
    """`trained`: an index folder of `ignite index train` to clone instead of training (a shard)."""
    if trained is not None:
        from ignite.index.distributed import load_trained

        return load_trained(trained, folder, shard_size, metadata)
    start = time.perf_counter()
    # One pass: count and keep a uniform reservoir big enough for any plan; a uniform subset of
    # it is still uniform over the input.
    sample = sample_records(files, field, SAMPLE_CAP)

    def embed(picked: np.ndarray) -> np.ndarray:
        return embed_texts(sample.texts(picked), tokenizer, runner, batch_tokens, pad_multiple)

    return index_from_sample(folder, kind, memory_bytes, shard_size, sample.total, sample.rows, embed, runner.dim,
                             metadata, start)


def index_from_sample(folder: Path, kind: str, memory_bytes: int, shard_size: int, count: int,
                      rows: list[int] | np.ndarray,
                      embed: Callable[[np.ndarray], np.ndarray], dim: int, metadata: dict,
                      start: float) -> IndexBuilder:
    """Plan the index for `count` records, embed the part of the sample (output `rows`) it trains
    on and queries recall with (`embed` takes positions in the sample), train it and hold those
    queries out."""
    plan = plan_index(kind, count, dim, memory_bytes)
    order = np.random.default_rng(SEED).permutation(len(rows))
    train = order[: max(plan.train_size, 0)]
    queries = order[: min(RECALL_QUERIES, len(rows))]
    # Queries reuse sampled vectors: embed the union once.
    need = np.union1d(train, queries)
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    vectors[need] = embed(need)
    builder = IndexBuilder(folder, plan, dim, shard_size, metadata)
    builder.train(vectors[train])
    builder.hold_out(np.asarray(rows, dtype=np.int64)[queries], vectors[queries])
    log.info("index %s for %d records (trained on %d sampled vectors, %d recall queries) ready in %.1fs",
             plan.factory, count, len(train) if plan.needs_training else 0, len(queries), time.perf_counter() - start)
    return builder


IMAGE_SAMPLE_CAP = 4096  # encoded images kept by the index's pre-pass (a few hundred MB at most)


def prepare_image_index(folder: Path, kind: str, memory_bytes: int, shard_size: int, files: list[InputFile],
                        feed: ImageFeed, runner: Any, metadata: dict, trained: Path | None = None) -> IndexBuilder:
    """As index.inline.prepare_index for images: one pass counts the images and keeps a uniform
    reservoir of them, whose embeddings train the coarse quantizer and serve as recall queries."""
    if trained is not None:
        from ignite.index.distributed import load_trained

        return load_trained(trained, folder, shard_size, metadata)
    start = time.perf_counter()
    rng = random.Random(SEED)
    rows: list[int] = []
    sample: list[bytes] = []
    total = seen = 0
    for file_index, item in enumerate(files):
        for record in ImageRecords(item, feed.names[file_index], feed.field, feed.id_field):
            if record.data is not None:
                if len(rows) < IMAGE_SAMPLE_CAP:
                    rows.append(total)
                    sample.append(record.data)
                elif (j := rng.randrange(seen + 1)) < IMAGE_SAMPLE_CAP:
                    rows[j], sample[j] = total, record.data
                seen += 1
            total += 1

    def embed(picked: np.ndarray) -> np.ndarray:
        return embed_images([sample[i] for i in picked], feed.preprocessor, feed.shape, runner, feed.batch_images)[0]

    return index_from_sample(folder, kind, memory_bytes, shard_size, total, rows, embed, runner.dim, metadata, start)
