"""The image ingest path, on the Python stages of pipeline/stages.py: a reader thread lists encoded
images into windows (spanning files, each record keeping its file and position), preprocess
threads turn each window into fixed-shape pixel batches in pooled buffers (the native
preprocessor releases the GIL on its own thread pool), and the same workers, writer, commits,
resume, index and signals as text take them from there. An image that cannot be decoded keeps
its row (zeros) with its status."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ignite.images.records import ImageRecord, ImageRecords
from ignite.pipeline.channel import Channel
from ignite.pipeline.stages import Stages
from ignite.pipeline.batch import Batch
from ignite.rows.status import OK
from ignite.rows.window import Window

CPU_BATCH_IMAGES = 32
GPU_BATCH_IMAGES = 256
PREPROCESS_THREADS = 2  # windows being preprocessed at once: one fills a batch while one waits to hand it over


@dataclass
class ImageFeed:
    """What the image stages need besides the run's config: the preprocessor (process(items, out)
    -> uint8 status codes, images/preprocess.py's contract), the pixel
    shape (3, H, W) it fills, the id of each loose image file, the table fields."""

    preprocessor: Any
    shape: tuple[int, int, int]
    names: list[str | None]
    field: str | None
    id_field: str | None
    batch_images: int


@dataclass
class ImageWindow(Window):
    images: list[bytes | None] = field(default_factory=list)  # encoded, None where status says why


class PixelBuffer:
    """One pooled (rows, 3, H, W) float32 array; the writer releases it once its batch is written."""

    def __init__(self, pool: PixelPool) -> None:
        self.pool = pool
        self.array = np.empty((pool.rows, *pool.shape), np.float32)

    def release(self) -> None:
        self.pool.give_back(self)


class PixelPool:
    """Pixel batches in flight are bounded by the channels, so are these buffers: steady state
    allocates nothing."""

    def __init__(self, rows: int, shape: tuple[int, int, int]) -> None:
        self.rows, self.shape = rows, shape
        self.allocated = 0
        self._free: list[PixelBuffer] = []
        self._lock = threading.Lock()

    def acquire(self) -> PixelBuffer:
        with self._lock:
            if self._free:
                return self._free.pop()
            self.allocated += 1
        return PixelBuffer(self)

    def give_back(self, buffer: PixelBuffer) -> None:
        with self._lock:
            self._free.append(buffer)


class ImageStages(Stages):
    """Stages with images read and preprocessed instead of texts read and tokenized; the `tokenizer`
    argument is the ImageFeed."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.feed: ImageFeed = self.tokenizer
        self.rows = min(self.feed.batch_images, self.limits.max_rows)
        self.pixels = PixelPool(self.rows, self.feed.shape)
        self.to_tokenize = Channel("reader->preprocess", PREPROCESS_THREADS, self.cancel)
        self.telemetry.rings["read"] = self.to_tokenize
        self._preprocessing = PREPROCESS_THREADS

    def ingest_refusal(self) -> str | None:
        return "image inputs"

    def ingest_threads(self) -> list[threading.Thread]:
        return [self.thread("reader", self.read, self.to_tokenize.close)] + [
            self.thread(f"preprocess-{i}", self.tokenize, self._preprocess_done) for i in range(PREPROCESS_THREADS)]

    def _preprocess_done(self) -> None:
        with self._lock:
            self._preprocessing -= 1
            last = not self._preprocessing
        if last:
            self.to_embed.close()

    def read(self) -> None:
        """Windows of `window_records` images from the committed position on; a record is added once
        the next one is known, so the last of each file is marked (a resume skips that file)."""
        s, feed, telemetry = self.start, self.feed, self.telemetry
        clock = telemetry.clock("reader")

        def put(window: Window) -> None:
            telemetry.records_read += len(window)
            clock.pause()  # waiting for a preprocess thread is not reading
            self.to_tokenize.put(window)
            clock.resume()

        clock.resume()
        builder = _WindowBuilder(s.windows, s.rows, self.cfg.window_records, put)
        for file_index, item in enumerate(self.files):
            if file_index < s.file or (file_index == s.file and s.file_done):
                continue
            records = ImageRecords(item, feed.names[file_index], feed.field, feed.id_field,
                                   skip=s.lines if file_index == s.file else 0)
            held: ImageRecord | None = None
            for record in records:
                if self.stop.is_set():
                    return
                if held is not None:
                    builder.add(file_index, held, last=False)
                held = record
            if held is not None:
                builder.add(file_index, held, last=True)
            if records.damage is not None:
                builder.damaged(file_index, records.damage.line, records.damage.reason, item.size)
        builder.flush()

    def tokenize(self) -> None:
        """Preprocess each window into pixel batches of `rows` images; failed images get their
        status and leave the batch, which is compacted (a batch of none goes straight to the writer)."""
        prep = self.feed.preprocessor
        clock = self.telemetry.clock("preprocess")  # decoding and preprocessing, paused while it waits
        while not self.stop.is_set() and (window := self.to_tokenize.get()) is not None:
            if self.stop.is_set():
                break  # not started: it is not committed and a resume reads it again
            clock.resume()
            todo = np.flatnonzero(window.status == OK)
            chunks = [todo[a:a + self.rows] for a in range(0, len(todo), self.rows)]
            window.n_batches = len(chunks)
            window.embeddings = np.zeros((len(window), self.dim), dtype=np.float32)
            clock.pause()
            self.to_write.put(window)
            for rows in chunks:
                buffer = self.pixels.acquire()
                clock.resume()
                statuses = prep.process([window.images[i] for i in rows], buffer.array[:len(rows)])
                window.status[rows] = statuses  # the rows were OK: only the failed ones change
                ok = np.flatnonzero(statuses == OK)
                if len(ok) < len(rows):
                    buffer.array[:len(ok)] = buffer.array[ok]
                kept = rows[ok]
                empty = np.zeros((len(ok), 0), np.int32)  # pixels, not tokens
                batch = Batch(window, kept, empty, empty, 0, storage=buffer, pixels=buffer.array[:len(ok)])
                clock.pause()
                if len(ok):
                    self.to_embed.put(batch)
                else:
                    batch.embeddings = np.zeros((0, self.dim), np.float32)
                    self.to_write.put(batch)
            window.images = []  # encoded bytes are needed no more
        if self.stop.is_set():
            self.to_tokenize.close()  # the reader may be waiting to put a window nobody will take


class _WindowBuilder:
    """Gathers records into ImageWindows that span files and hands each on once full and the next
    record has come (or at the end)."""

    def __init__(self, index: int, row: int, size: int, put: Callable[[Window], None]) -> None:
        self.index, self.row, self.size, self.put = index, row, size, put
        self._reset()

    def _reset(self) -> None:
        self.files: list[int] = []
        self.records: list[ImageRecord] = []
        self.last = False
        self.damages: list[tuple[int, int, str]] = []
        self.end: tuple[int, int, int, bool] | None = None
        self.offset = 0

    def add(self, file: int, record: ImageRecord, last: bool) -> None:
        if len(self.records) >= self.size:
            self.flush()
        self.files.append(file)
        self.records.append(record)
        self.end, self.offset = (file, record.line, self.files.count(file), last), record.offset

    def damaged(self, file: int, line: int, reason: str, size: int) -> None:
        """A damaged input ends there: the window carries the damage to the manifest and marks the
        file done, so a resume does not read it again."""
        self.damages.append((file, line, reason))
        if self.end is not None and self.end[0] == file:
            self.end = (file, self.end[1], self.end[2], True)
        else:
            self.end, self.offset = (file, line, 0, True), size

    def flush(self) -> None:
        if not self.records and not self.damages:
            return
        recs = self.records
        assert self.end is not None
        window = ImageWindow(
            index=self.index, start_row=self.row, file_index=self.files[0] if self.files else self.end[0], texts=(),
            ids=[r.ident for r in recs], lines=np.asarray([r.line for r in recs], np.int64),
            status=np.asarray([r.status for r in recs], np.uint8), end_offset=self.offset,
            files=np.asarray(self.files, np.int32), end=self.end, extra={"damages": self.damages},
            images=[r.data for r in recs])
        self.put(window)
        self.index += 1
        self.row += len(recs)
        self._reset()

