"""`ignite search`: embed queries with the index's own model and options (and the model's query
prompt), search the index, and show each hit's id and, when the source is at hand, its text. A
CLIP index is searched by text through the model's text tower and by image through its vision
tower; its hits are images, named by their ids (path or tar key)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ignite.errors import UsageError
from ignite.index import store
from ignite.rows.status import OK, STATUS_NAMES

log = logging.getLogger("ignite")


def _runner_for(info: dict[str, Any], model: str | None, threads: int, tower: str = "text"):  # type: ignore[no-untyped-def]
    from ignite.backends import open_backend
    from ignite.config import ModelOptions, default_cache_dir
    from ignite.models import load_spec, resolve_model
    from ignite.pipeline.tokenize import WindowTokenizer

    emb = info.get("embedding") or {}
    name = model or emb.get("model")
    if not name:
        raise UsageError("the index does not say which model built it; pass --model")
    spec = load_spec(resolve_model(name), name)
    opts = emb.get("options", {})
    if tower == "vision" and not spec.is_clip:
        raise UsageError(f"model {name} has no vision tower: search by image needs an index built with a CLIP model")
    prefix = spec.prompts.get("query", opts.get("prefix", ""))
    options = ModelOptions(pooling=opts.get("pooling", spec.pooling), normalize=opts.get("normalize", spec.normalize),
                           max_length=spec.max_length if spec.is_clip else opts.get("max_length", spec.max_length),
                           prefix=prefix, dim=opts.get("dim"), tower=tower)
    runner = open_backend("auto", "auto", spec, options, default_cache_dir(), threads)
    if runner.dim != info["dim"]:
        raise UsageError(f"model {name} gives {runner.dim}-d vectors but the index holds {info['dim']}-d ones; "
                         f"pass the model that built it")
    return WindowTokenizer(spec.tokenizer_path, options.max_length, prefix), runner, spec


def _row_table(info: dict[str, Any]) -> pa.Table | None:
    import glob

    paths = [Path(p) for pattern in info.get("row_metadata", []) for p in sorted(glob.glob(pattern))]
    if not paths:
        return None
    return pa.concat_tables([pq.read_table(p, columns=["row", "id", "file", "line"]) for p in paths])


def _texts_for(meta: pa.Table, rows: set[int], field: str) -> dict[int, str]:
    """Texts of the given output rows, read back from their source files by line."""
    from ignite.io.inputs import expand_inputs
    from ignite.io.readers import RecordReader

    wanted: dict[tuple[str, int], int] = {}
    all_rows = meta.column("row").to_numpy()
    picks = np.nonzero(np.isin(all_rows, list(rows)))[0]
    for i in picks:
        wanted[(str(meta.column("file")[int(i)]), int(meta.column("line")[int(i)].as_py()))] = int(all_rows[i])
    out: dict[int, str] = {}
    for file in {f for f, _ in wanted}:
        if not Path(file).is_file():
            continue
        for window in RecordReader(expand_inputs([file])[0], field, None, 65536).windows():
            for line, text in zip(window.lines.tolist(), window.texts):
                if (file, line) in wanted:
                    out[wanted[(file, line)]] = text
    return out


def _image_vectors(paths: list[str], model_dir: Path, runner: Any) -> np.ndarray:
    from ignite.images.preprocess import ImageSpec, make_preprocessor
    from ignite.pipeline.encode import embed_images

    images = []
    for path in paths:
        try:
            images.append(Path(path).read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read query image {path}: {exc.strerror}") from None
    spec = ImageSpec.from_model_dir(model_dir)
    vectors, statuses = embed_images(images, make_preprocessor(spec), spec.shape, runner, 32)
    for path, status in zip(paths, statuses.tolist()):
        if status != OK:
            raise UsageError(f"query image {path} cannot be embedded: {STATUS_NAMES[status]}")
    return vectors


def run_search(index_dir: Path, queries: list[tuple[str, str]], k: int, model: str | None, threads: int,
               nprobe: int | None, images: bool = False) -> list[dict[str, Any]]:
    """`queries`: (id, text) pairs, or with `images` (id, image path) pairs."""
    from ignite.pipeline.encode import embed_texts

    info = store.read_info(index_dir)
    tokenizer, runner, spec = _runner_for(info, model, threads, "vision" if images else "text")
    if images:
        vectors = _image_vectors([q for _, q in queries], spec.path, runner)
    else:
        vectors = embed_texts([q for _, q in queries], tokenizer, runner, 4096)
    scores, rows = store.search(index_dir, vectors, k, nprobe)
    meta = _row_table(info)
    hit_rows = {int(r) for r in rows.ravel() if r >= 0}
    of_images = (info.get("embedding") or {}).get("options", {}).get("tower") == "vision"
    texts = _texts_for(meta, hit_rows, info.get("embedding", {}).get("field", "text")) \
        if meta is not None and not of_images else {}
    ids: dict[int, Any] = {}
    if meta is not None:
        row_col = meta.column("row").to_numpy()
        for i in np.nonzero(np.isin(row_col, list(hit_rows)))[0]:
            ids[int(row_col[i])] = meta.column("id")[int(i)].as_py()
    hits = []
    for (qid, _), s_line, r_line in zip(queries, scores, rows):
        for rank, (score, row) in enumerate(zip(s_line.tolist(), r_line.tolist()), start=1):
            if row < 0:
                continue
            hits.append({"query_id": qid, "rank": rank, "score": float(score), "row": int(row),
                         "id": ids.get(int(row), int(row)), "text": texts.get(int(row))})
    return hits
