"""Run the stages as threads joined by bounded channels. The writer runs on the calling thread,
restores input order and commits whole windows. The first exception in any stage cancels the
run and is re-raised here."""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson

from ignite.backends.base import Runner
from ignite.config import EmbedConfig
from ignite.errors import TooManyErrors
from ignite.io.inputs import InputFile
from ignite.io.outputs import Sink, open_sink
from ignite.io.readers import DamagedInput, RecordReader
from ignite.pipeline.batcher import fill_batch, plan_batches
from ignite.pipeline.channel import Cancelled, Channel
from ignite.pipeline.tokenize import WindowTokenizer
from ignite.pipeline.window import OK, Batch, Window
from ignite.progress import Progress

log = logging.getLogger(__name__)

WARN_FIRST = 10  # bad records named one by one in the log; the rest are counted


@dataclass
class RunStats:
    records: int = 0
    failed: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0
    seconds: float = 0.0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    damaged: list[DamagedInput] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)

    @property
    def padding_efficiency(self) -> float:
        return self.real_tokens / self.padded_tokens if self.padded_tokens else 1.0


class _Stages:
    def __init__(self, cfg: EmbedConfig, files: list[InputFile], runner: Runner,
                 tokenizer: WindowTokenizer, pad_multiple: int) -> None:
        self.cfg, self.files, self.runner, self.tokenizer = cfg, files, runner, tokenizer
        self.pad_multiple = pad_multiple
        self.cancel = threading.Event()
        self.to_tokenize: Channel[Window] = Channel("reader->tokenizer", 2, self.cancel)
        self.to_embed: Channel[Batch] = Channel("batcher->worker", 8, self.cancel)
        self.to_write: Channel[Window | Batch] = Channel("->writer", 64, self.cancel)
        self.error: BaseException | None = None
        self.damaged: list[DamagedInput] = []
        self._lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        self.cancel.set()
        for channel in (self.to_tokenize, self.to_embed, self.to_write):
            channel.close()

    def thread(self, name: str, target: Callable[[], None], then: Callable[[], None]) -> threading.Thread:
        def body() -> None:
            try:
                target()
                then()
            except Cancelled:
                pass
            except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
                self.fail(exc)

        return threading.Thread(target=body, name=f"ignite-{name}", daemon=True)

    def read(self) -> None:
        index, row = 0, 0
        for file_index, item in enumerate(self.files):
            reader = RecordReader(item, self.cfg.field, self.cfg.id_field, self.cfg.window_records)
            for raw in reader.windows():
                window = Window(index=index, start_row=row, file_index=file_index, texts=raw.texts, ids=raw.ids,
                                lines=raw.lines, status=raw.status, end_offset=raw.end_offset)
                self.to_tokenize.put(window)
                index += 1
                row += len(window)
            if reader.damage is not None:
                self.damaged.append(reader.damage)

    def tokenize(self) -> None:
        while (window := self.to_tokenize.get()) is not None:
            self.tokenizer.tokenize(window)
            ok = window.ok_rows
            offsets = window.token_offsets
            assert offsets is not None and window.token_ids is not None
            lengths = offsets[ok + 1] - offsets[ok]
            plans = [ok[idx] for idx in plan_batches(lengths, self.cfg.batch_tokens, self.pad_multiple)]
            window.n_batches = len(plans)
            window.embeddings = np.zeros((len(window), self.runner.dim), dtype=np.float32)
            self.to_write.put(window)
            for rows in plans:
                ids, mask = fill_batch(window.token_ids, offsets, rows, self.pad_multiple, self.tokenizer.pad_id)
                self.to_embed.put(Batch(window, rows, ids, mask, int(mask.sum())))

    def embed(self) -> None:
        while (batch := self.to_embed.get()) is not None:
            batch.embeddings = self.runner.run(batch.input_ids, batch.attention_mask)
            self.to_write.put(batch)


def run_pipeline(cfg: EmbedConfig, files: list[InputFile], runner: Runner, tokenizer: WindowTokenizer,
                 pad_multiple: int = 1) -> RunStats:
    stages = _Stages(cfg, files, runner, tokenizer, pad_multiple)
    threads = [
        stages.thread("reader", stages.read, stages.to_tokenize.close),
        stages.thread("tokenizer", stages.tokenize, stages.to_embed.close),
        stages.thread("worker", stages.embed, stages.to_write.close),
    ]
    names = [str(f.path) for f in files]
    stats = RunStats()
    sink = open_sink(cfg.output, cfg.output_kind, runner.dim, cfg.output_dtype, names, cfg.id_field is not None,
                     cfg.shard_rows)
    errors_file = open(cfg.errors_path, "wb") if cfg.errors_path else None  # noqa: SIM115
    progress = Progress(total_bytes=sum(f.size for f in files), enabled=not cfg.quiet)
    start = time.perf_counter()
    for t in threads:
        t.start()
    try:
        _write_loop(stages, sink, stats, names, errors_file, progress, files)
        if stages.error is None:
            stats.outputs = sink.finish()
    except BaseException as exc:
        stages.fail(exc)
    finally:
        for t in threads:
            t.join()
        progress.close()
        sink.close()
        if errors_file:
            errors_file.close()
    if stages.error is not None:
        raise stages.error
    stats.seconds = time.perf_counter() - start
    stats.damaged = stages.damaged
    return stats


def _write_loop(stages: _Stages, sink: Sink, stats: RunStats, names: list[str], errors_file: Any,
                progress: Progress, files: list[InputFile]) -> None:
    pending: dict[int, Window] = {}
    next_index = 0
    done_bytes = [0] * (len(files) + 1)  # bytes of all files before file i
    for i, f in enumerate(files):
        done_bytes[i + 1] = done_bytes[i] + f.size
    while (item := stages.to_write.get()) is not None:
        if isinstance(item, Window):
            pending[item.index] = item
        else:
            window = item.window
            assert window.embeddings is not None and item.embeddings is not None
            window.embeddings[item.rows] = item.embeddings
            window.batches_done += 1
            stats.batches += 1
            stats.real_tokens += item.real_tokens
            stats.padded_tokens += item.input_ids.size
        while next_index in pending and pending[next_index].batches_done == pending[next_index].n_batches:
            window = pending.pop(next_index)
            sink.write(window)
            _account(window, stats, names, errors_file, stages.cfg.max_errors)
            progress.update(stats.records, done_bytes[window.file_index] + window.end_offset)
            next_index += 1
    if pending and stages.error is None:
        raise RuntimeError(f"internal error: {len(pending)} windows never completed")


def _account(window: Window, stats: RunStats, names: list[str], errors_file: Any, max_errors: int | None) -> None:
    stats.records += len(window)
    bad = [i for i, s in enumerate(window.status) if s != OK] if window.status.count(OK) != len(window) else []
    for i in bad:
        stats.failed += 1
        reason = window.status[i]
        stats.statuses[reason] += 1
        where = f"{names[window.file_index]}:{int(window.lines[i])}"
        if stats.failed <= WARN_FIRST:
            log.warning("%s: %s (row %d kept as zeros)", where, reason, window.start_row + i)
        elif stats.failed == WARN_FIRST + 1:
            log.warning("more bad records: counted in the summary%s",
                        "" if errors_file else "; pass --errors FILE to list them all")
        if errors_file is not None:
            errors_file.write(orjson.dumps({"file": names[window.file_index], "line": int(window.lines[i]),
                                            "row": window.start_row + i, "id": window.ids[i], "reason": reason}))
            errors_file.write(b"\n")
    if max_errors is not None and stats.failed > max_errors:
        raise TooManyErrors(f"{stats.failed} bad records, more than --max-errors {max_errors}; "
                            f"see the warnings above{' and the --errors file' if errors_file else ''}")
    stats.statuses[OK] += len(window) - len(bad)

