"""The stages before the writer. Two ingest paths feed the same device workers (pipeline/dispatch.py):
- native (JSONL and text inputs, native reader and WordPiece tokenizer): ignite._engine's
  IngestPipeline reads, tokenizes (a pool of threads) and packs in C++, with windows that span
  files; workers take batches with next_batch() and scatter their embeddings with complete().
- Python (Parquet inputs, HF tokenizers, IGNITE_READER=python or IGNITE_PIPELINE=python):
  reader and tokenizer/packer threads joined by channels, one file per window.
pipeline/images.py's ImageStages put image reading and preprocessing in their place."""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

import numpy as np

from ignite import _engine  # channel.py needs it too: the stages never run without it
from ignite.backends.base import Runner, common_capabilities
from ignite.backends.packing import BufferPool, fill_batch, plan_batches
from ignite.config import EmbedConfig
from ignite.hardware import usable_cores
from ignite.io.inputs import InputFile
from ignite.io.manifest import Committed
from ignite.io.readers import MAX_LINE_BYTES, READ_CHUNK, RecordReader, use_native_reader
from ignite.pipeline.batch import Batch
from ignite.pipeline.channel import Cancelled, Channel, Empty
from ignite.pipeline.dispatch import Devices
from ignite.pipeline.tokenize import WindowTokenizer
from ignite.rows.status import BACKEND_ERROR
from ignite.rows.window import Window
from ignite.telemetry.live import Telemetry


def native_ingest_refusal(files: list[InputFile], tokenizer: WindowTokenizer) -> str | None:
    """Why this run cannot take the native ingest pipeline; None when it can."""
    if os.environ.get("IGNITE_PIPELINE", "").lower() == "python":
        return "IGNITE_PIPELINE=python"
    if not use_native_reader():
        return "the native reader is off (IGNITE_READER=python) or not built"
    if not hasattr(_engine, "IngestPipeline"):
        return "ignite._engine has no IngestPipeline"
    if tokenizer.native is None:
        return f"the tokenizer is not native WordPiece ({tokenizer.native_refusal})"
    if any(f.format == "parquet" for f in files):
        return "Parquet inputs are read by pyarrow"
    return None


class Stages:
    """The stages before the writer: the ingest path (native, or the Python reader and tokenizer
    threads joined by channels) and the device workers it feeds; the first error in any of them
    cancels the run (`fail`)."""

    def __init__(self, cfg: EmbedConfig, files: list[InputFile], runners: list[Runner], tokenizer: WindowTokenizer,
                 pad_multiple: int | None, start: Committed, stop: threading.Event, telemetry: Telemetry) -> None:
        self.cfg, self.files, self.tokenizer = cfg, files, tokenizer
        self.telemetry = telemetry
        self.dim = runners[0].dim
        # What every device accepts: batches go to whichever is free.
        self.limits = common_capabilities(runners)
        self.pad_multiple = pad_multiple or self.limits.pad_multiple
        self.pool = BufferPool(cfg.batch_tokens)
        self.start, self.stop = start, stop
        self.cancel = threading.Event()
        self.to_tokenize: Channel[Window] = Channel("reader->tokenizer", 2, self.cancel)
        self.to_embed: Channel[Batch] = Channel("batcher->worker", 8, self.cancel)
        self.to_write: Channel[Window | Batch] = Channel("->writer", 64, self.cancel)
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.pipe: Any = None  # ignite._engine.IngestPipeline, once open_native made it
        telemetry.rings = {"read": self.to_tokenize, "batches": self.to_embed, "write": self.to_write}
        self.devices = Devices(runners, telemetry, self.take, self.deliver, self.to_write.close)

    def open_native(self) -> None:
        """Start the native reader, tokenizer pool and packer from the committed position."""
        from ignite._engine import IngestPipeline

        s, cfg, tok = self.start, self.cfg, self.tokenizer
        inputs = []
        for i, f in enumerate(self.files):
            if i < s.file or (i == s.file and s.file_done):
                continue
            # As RecordReader: from the committed line or the shard's first line, to its range's end.
            skip = max(s.lines if i == s.file else 0, f.first_line)
            inputs.append((str(f.path), f.compression or "none", f.format, i, f.size, skip,
                           None if f.end_line is None else max(f.end_line - skip, 0)))
        threads = tok.threads or usable_cores()
        self.pipe = IngestPipeline(
            inputs, tok.native, self.dim, field=cfg.field, id_field=cfg.id_field, window_records=cfg.window_records,
            budget=cfg.batch_tokens, max_rows=self.limits.max_rows,
            max_width=self.limits.max_length or tok.max_length, pad_multiple=self.pad_multiple, prefix=tok.prefix,
            tokenizer_threads=threads, first_window=s.windows,
            first_row=s.rows, windows_in_flight=threads + 3, retokenize=tok.reference_encode, read_chunk=READ_CHUNK,
            max_line_bytes=MAX_LINE_BYTES)
        self.telemetry.rings = {}  # the native pipeline reports its own rings
        self.telemetry.native = self.pipe
        self.devices.take_native = self.take_native

    def ingest_refusal(self) -> str | None:
        """Why the native ingest pipeline cannot take this run; None when it can."""
        return native_ingest_refusal(self.files, self.tokenizer)

    def ingest_threads(self) -> list[threading.Thread]:
        """The Python ingest stages' threads: reader and tokenizer/packer."""
        return [self.thread("reader", self.read, self.to_tokenize.close),
                self.thread("tokenizer", self.tokenize, self.to_embed.close)]

    def worker_threads(self) -> list[threading.Thread]:
        """The device workers' threads."""
        return self.devices.threads(self.thread)

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        self.cancel.set()
        if self.pipe is not None:
            self.pipe.cancel()
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
        """Windows from the committed position on: finished files are skipped unopened, the file
        in progress from its first uncommitted line."""
        s, telemetry = self.start, self.telemetry
        index, row = s.windows, s.rows
        clock = telemetry.clock("reader")
        clock.resume()
        for file_index, item in enumerate(self.files):
            if file_index < s.file or (file_index == s.file and s.file_done):
                continue
            reader = RecordReader(item, self.cfg.field, self.cfg.id_field, self.cfg.window_records,
                                  skip_lines=s.lines if file_index == s.file else 0)
            damage_sent, offset = False, 0
            for raw in reader.windows():
                if self.stop.is_set():
                    return
                telemetry.records_read += len(raw.texts)
                telemetry.bytes_read += raw.end_offset - offset
                offset = raw.end_offset
                window = Window(index=index, start_row=row, file_index=file_index, texts=raw.texts, ids=raw.ids,
                                lines=raw.lines, status=raw.status, end_offset=raw.end_offset,
                                text_bytes=raw.text_bytes, text_offsets=raw.text_offsets,
                                extra={"last": raw.last, "damage": raw.damage})
                damage_sent = raw.damage is not None
                clock.pause()
                self.to_tokenize.put(window)
                clock.resume()
                index += 1
                row += len(window)
            if reader.damage is not None and not damage_sent:
                # No record followed the last window: an empty one carries the damage to the manifest.
                self.to_tokenize.put(Window(index=index, start_row=row, file_index=file_index, texts=[], ids=[],
                                            lines=np.zeros(0, np.int64), status=np.zeros(0, np.uint8),
                                            end_offset=item.size,
                                            extra={"last": True, "damage": reader.damage}))
                index += 1

    def tokenize(self) -> None:
        clock = self.telemetry.clock("tokenizer")  # tokenizes and packs, paused while it waits
        while not self.stop.is_set() and (window := self.to_tokenize.get()) is not None:
            if self.stop.is_set():
                break  # not started: it is not committed and a resume reads it again
            clock.resume()
            self.tokenizer.tokenize(window)
            ok = window.ok_rows
            offsets = window.token_offsets
            assert offsets is not None and window.token_ids is not None
            lengths = offsets[ok + 1] - offsets[ok]
            plan = plan_batches(lengths, self.cfg.batch_tokens, self.pad_multiple, self.limits.max_rows,
                                self.limits.max_length or self.tokenizer.max_length)
            window.n_batches = len(plan)
            window.embeddings = np.zeros((len(window), self.dim), dtype=np.float32)
            clock.pause()
            self.to_write.put(window)
            rows_sorted, real_sorted = ok[plan.order], lengths[plan.order]
            bounds = plan.bounds.tolist()
            for i, width in enumerate(plan.widths.tolist()):
                a, b = bounds[i], bounds[i + 1]
                rows = rows_sorted[a:b]
                clock.resume()
                storage = self.pool.acquire((b - a) * width)
                ids, mask = fill_batch(window.token_ids, offsets, rows, self.pad_multiple, self.tokenizer.pad_id,
                                       width=width, out=storage)
                clock.pause()
                self.to_embed.put(Batch(window, rows, ids, mask, int(real_sorted[a:b].sum()), storage=storage))
        if self.stop.is_set():
            self.to_tokenize.close()  # the reader may be waiting to put a window nobody will take

    def deliver(self, batch: Any, out: np.ndarray, failed: list[int]) -> None:
        """Hand a batch's embeddings to its window; `failed`: its rows that get status
        backend_error. Natively they are scattered at once; on the Python path the writer does it,
        and the statuses are set here because it reads them only once every batch of the window
        has come back through the channel."""
        if self.pipe is not None:
            self.pipe.complete(batch, out, np.asarray(failed, np.int64) if failed else None)
            return
        if failed:
            batch.window.status[batch.rows[failed]] = BACKEND_ERROR
        batch.embeddings = out
        self.to_write.put(batch)

    def take(self, seconds: float) -> Any:
        """The next batch of the ingest path; None once there are no more; raises Empty when none
        came within `seconds`."""
        if self.pipe is None:
            return self.to_embed.get(seconds)
        try:
            batch = self.pipe.next_batch(seconds)
        except _engine.Cancelled:
            raise Cancelled("native ingest") from None
        if batch is not None:
            batch.tried = set()  # workers (devices) it failed on, as Batch.tried
            return batch
        if self.pipe.batches_finished:
            return None
        raise Empty("native ingest")

    def take_native(self, backend: Any, seconds: float) -> tuple[Any, str, int, int, float, bool]:
        """One turn of the native worker loop on `backend` (an ignite._engine.NativeBackend), up to
        `seconds` with no Python per batch: the batch it failed on (with `tried`, as take's) or
        None, its error, batches and records done, seconds in the backend, and whether there are
        no more batches."""
        try:
            failed, error, batches, records, busy = self.pipe.run_native(backend, seconds)
        except _engine.Cancelled:
            raise Cancelled("native ingest") from None
        if failed is not None:
            failed.tried = set()
        return failed, error, batches, records, busy, self.pipe.batches_finished
