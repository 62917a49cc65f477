"""Run the stages and commit whole windows in input order on the calling thread (see
io/manifest.py for what a commit records). The first exception in any stage cancels the run and
is re-raised here; a SIGINT/SIGTERM stops reading, lets the windows in flight commit, and returns.

Two ingest paths feed the same workers and writer:
- native (JSONL and text inputs, native reader and WordPiece tokenizer): ignite._engine's
  IngestPipeline reads, tokenizes (a pool of threads) and packs in C++, with windows that span
  files; workers take batches with next_batch() and scatter their embeddings with complete(),
  and the writer is called once per complete window.
- Python (Parquet inputs, HF tokenizers, IGNITE_READER=python or IGNITE_PIPELINE=python):
  reader and tokenizer/packer threads joined by channels, one file per window."""
from __future__ import annotations

import collections
import functools
import errno
import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import orjson

from ignite.backends.base import Runner, capabilities, common_capabilities
from ignite.config import EmbedConfig
from ignite.errors import IgniteError, InputChanged, OutputError, TooManyErrors, VerificationError
from ignite.hardware import usable_cores
from ignite.io.inputs import InputFile
from ignite.io.manifest import Committed, WorkDir
from ignite.io.outputs import Sink, ids_path, open_sink
from ignite.io.readers import MAX_LINE_BYTES, READ_CHUNK, DamagedInput, RecordReader, use_native_reader
from ignite.io.verify import verify_finished
from ignite.backends.packing import BufferPool, fill_batch, plan_batches
from ignite.pipeline.channel import POLL_SECONDS, Cancelled, Channel
from ignite.pipeline.tokenize import WindowTokenizer
from ignite.pipeline.batch import Batch
from ignite.rows.status import BACKEND_ERROR, OK, STATUS_NAMES
from ignite.rows.window import ArenaIds, Window
from ignite.progress import Progress
from ignite.telemetry.live import Telemetry

if TYPE_CHECKING:
    from ignite.index.builder import IndexBuilder
    from ignite.pipeline.images import ImageFeed

log = logging.getLogger(__name__)

WARN_FIRST = 10  # bad records named one by one in the log; the rest are counted
COMMIT_SECONDS = 1.0  # a window shorter than --window-records (a file's end) commits at most this often
BROKEN_BACKEND_STREAK = 3  # batches in a row with no record embedded: the backend is broken, not the data


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM before the pipeline ran; the CLI exits 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


class StopSignals:
    """SIGINT and SIGTERM. Before the pipeline runs, the first raises Interrupted. While it runs,
    the first asks it to stop reading and commit the windows in flight. While the outputs are
    being finished it is noted and finishing goes on. A second signal exits at once, with
    os._exit: the last commit holds, so nothing needs cleaning up."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.phase = "setup"  # setup | pipeline | finishing

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            os.write(2, f"ignite: second {name}: exiting now; the last commit holds, rerun with --resume\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        if self.phase == "setup":
            raise Interrupted(signum)
        self.event.set()
        if self.phase == "pipeline":
            log.warning("%s: committing the windows in flight, then stopping (send it again to stop at once)", name)
        else:
            log.warning("%s: finishing the outputs first (send it again to stop at once)", name)


@dataclass
class RunStats:
    records: int = 0  # rows committed, including those of the runs this one resumes
    resumed_rows: int = 0
    failed: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    batches: int = 0
    seconds: float = 0.0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    damaged: list[DamagedInput] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    interrupted: int | None = None  # the signal that stopped the run before its end
    index: dict[str, Any] | None = None  # the finished index's info, with --index
    verified: str = ""  # what the finished files were checked to hold, in words
    native_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of the native stages' threads

    @property
    def padding_efficiency(self) -> float:
        return self.real_tokens / self.padded_tokens if self.padded_tokens else 1.0


def _write_error(exc: OSError, path: Path) -> OutputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        return OutputError(f"{what} writing {path}; free space and rerun with --resume")
    if exc.errno == errno.EFBIG:
        return OutputError(f"file too large writing {path} (file size limit, ulimit -f); raise the limit and "
                           f"rerun with --resume")
    what = (exc.strerror or str(exc) or type(exc).__name__).splitlines()[0]
    return OutputError(f"cannot write {path}: {what}; fix that and rerun with --resume")


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a failed write into one line naming the file and the way on."""
    try:
        yield
    except OSError as exc:
        raise _write_error(exc, path) from None


def _short(exc: BaseException) -> str:
    text = (str(exc) or type(exc).__name__).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


class _DeviceBroken(Exception):
    """A worker's backend failed on every record of several batches in a row."""


class _HandedOff(Exception):
    """The batch failed here and went to another device."""


def native_ingest_refusal(files: list[InputFile], tokenizer: WindowTokenizer) -> str | None:
    """Why this run cannot take the native ingest pipeline; None when it can."""
    if os.environ.get("IGNITE_PIPELINE", "").lower() == "python":
        return "IGNITE_PIPELINE=python"
    if not use_native_reader():
        return "the native reader is off (IGNITE_READER=python) or not built"
    from ignite import _engine

    if not hasattr(_engine, "IngestPipeline"):
        return "ignite._engine has no IngestPipeline"
    if tokenizer.native is None:
        return f"the tokenizer is not native WordPiece ({tokenizer.native_refusal})"
    if any(f.format == "parquet" for f in files):
        return "Parquet inputs are read by pyarrow"
    return None


class _Stages:
    def __init__(self, cfg: EmbedConfig, files: list[InputFile], runners: list[Runner], tokenizer: WindowTokenizer,
                 pad_multiple: int | None, start: Committed, stop: threading.Event, telemetry: Telemetry) -> None:
        self.cfg, self.files, self.runners, self.tokenizer = cfg, files, runners, tokenizer
        self.telemetry = telemetry
        self.dim = runners[0].dim
        # What every device accepts: batches go to whichever is free.
        self.limits = common_capabilities(runners)
        # A runner with several in-flight slots (TensorRT: copy in, compute and copy out of
        # consecutive batches overlap) gets one worker thread per slot; they share its device index.
        self.threads_per_device = [max(1, capabilities(r).slots) for r in runners]
        # Devices alive, their worker threads still pulling, and batches a failed device left
        # behind; all under self._lock.
        self._alive = set(range(len(runners)))
        self._pulling = list(self.threads_per_device)
        self._ended = 0
        self._orphans: list[Batch] = []
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

    def ingest_refusal(self) -> str | None:
        """Why the native ingest pipeline cannot take this run; None when it can."""
        return native_ingest_refusal(self.files, self.tokenizer)

    def ingest_threads(self) -> list[threading.Thread]:
        """The Python ingest stages' threads: reader and tokenizer/packer."""
        return [self.thread("reader", self.read, self.to_tokenize.close),
                self.thread("tokenizer", self.tokenize, self.to_embed.close)]

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

    def embed(self, worker: int) -> None:
        """One worker per device, all pulling from the same channel: a slow device simply takes
        fewer batches. A batch a device fails on goes to a device that has not tried it yet; a
        device that fails every batch in a row leaves the run to the others."""
        runner, streak = self.runners[worker], [0, ""]  # failures in a row, the last one's text
        counters = self.telemetry.worker(runner.device, runner.name, runner.dtype)
        while (batch := self._next_batch(worker)) is not None:
            try:
                with counters.clock:
                    out, failed = self._run(batch, worker, runner, streak)
            except _HandedOff:
                continue
            except _DeviceBroken as exc:  # the batch went to the other devices' queue first
                self._retire(worker, runner, exc)
                return
            if streak[0] >= BROKEN_BACKEND_STREAK:
                # Raises when no other device is left: the batch is then not committed, so a
                # resume tries its records again. Otherwise it goes on with its failures marked.
                self._retire(worker, runner, _DeviceBroken(
                    f"the {runner.name} backend failed on every record of {streak[0]} batches in a row: {streak[1]}"))
                self._deliver(batch, out, failed)
                return
            self._deliver(batch, out, failed)
            counters.batches += 1
            counters.records += len(batch.rows)

    def _deliver(self, batch: Any, out: np.ndarray, failed: list[int]) -> None:
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

    def _retire(self, worker: int, runner: Runner, exc: _DeviceBroken) -> None:
        """Take a failing device out of the run; the run fails only if it was the last one."""
        with self._lock:
            if worker not in self._alive:  # a sibling thread already retired it
                return
            if len(self._alive) > 1:
                self._alive.discard(worker)
                log.error("%s on %s failed: %s; the other devices take its work", runner.name, runner.device, exc)
                return
        raise IgniteError(str(exc)) from exc.__cause__

    def _next_batch(self, worker: int) -> Batch | None:
        while True:
            with self._lock:
                if worker not in self._alive:  # retired after failing: its siblings stop too
                    return None
                if self._orphans:
                    return self._orphans.pop()
            batch = self._take()
            if batch is not None:
                return batch
            with self._lock:  # channel drained: leave, unless a device just handed work over
                if not self._orphans:
                    self._pulling[worker] -= 1
                    if not self._pulling[worker]:
                        self._alive.discard(worker)
                    return None

    def _take(self) -> Any:
        """The next batch of the ingest path; None once there are no more."""
        if self.pipe is None:
            return self.to_embed.get()
        from ignite._engine import Cancelled as NativeCancelled

        while True:
            try:
                batch = self.pipe.next_batch(POLL_SECONDS)
            except NativeCancelled:
                raise Cancelled("native ingest") from None
            if batch is not None:
                batch.tried = set()  # workers (devices) it failed on, as Batch.tried
                return batch
            if self.pipe.batches_finished:
                return None

    def _hand_off(self, batch: Batch, worker: int) -> bool:
        """Give `batch` to the devices that have not tried it; False if there are none."""
        batch.tried.add(worker)
        with self._lock:
            if not self._alive - batch.tried:
                return False
            self._orphans.append(batch)
            return True

    def worker_done(self) -> None:
        """Called as each worker ends; the last one closes the writer's channel."""
        with self._lock:
            self._ended += 1
            last = self._ended == sum(self.threads_per_device)
        if last:
            self.to_write.close()

    def _run(self, batch: Batch, worker: int, runner: Runner, streak: list) -> tuple[np.ndarray, list[int]]:
        """A batch's embeddings and its rows that failed. A batch the backend fails on is retried
        once, then split in halves, so one bad record cannot fail its neighbours; a record that
        fails on its own gets zeros and status backend_error."""
        try:
            return _infer(runner, batch), []
        except Exception as exc:  # noqa: BLE001 - any backend failure
            log.warning("backend failed on a batch of %d records (%s); retrying it", len(batch.rows), _short(exc))
            first = exc
        out = np.zeros((len(batch.rows), runner.dim), np.float32)
        failed: list[int] = []
        try:
            out[:] = _infer(runner, batch)
        except Exception:  # noqa: BLE001
            if self._hand_off(batch, worker):
                streak[0] += 1
                if streak[0] >= BROKEN_BACKEND_STREAK:
                    raise _DeviceBroken(f"the {runner.name} backend failed on {streak[0]} batches in a row: "
                                        f"{_short(first)}") from first
                raise _HandedOff from None
            self._split(batch, runner, np.arange(len(batch.rows)), out, failed)
        if len(failed) == len(batch.rows):
            streak[0], streak[1] = streak[0] + 1, _short(first)  # embed() may retire the device
        else:
            streak[0] = 0
        if failed:
            log.warning("backend failed on %d record(s) on their own: status %s", len(failed), BACKEND_ERROR)
        return out, failed

    def _split(self, batch: Batch, runner: Runner, idx: np.ndarray, out: np.ndarray, failed: list[int]) -> None:
        """Embed the halves of the failed rows `idx` of a batch, each half split again if it fails."""
        if len(idx) == 1:
            failed.append(int(idx[0]))
            return
        for part in (idx[: len(idx) // 2], idx[len(idx) // 2:]):
            try:
                out[part] = _infer(runner, batch, part)
            except Exception:  # noqa: BLE001
                self._split(batch, runner, part, out, failed)


def _infer(runner: Any, batch: Any, part: np.ndarray | None = None) -> np.ndarray:
    """The embeddings of a batch (of its rows `part` when given): pixels on a vision tower
    (ImageRunner.run_images), ids and mask otherwise (a Batch, or a native pipeline's batch)."""
    if isinstance(batch, Batch) and batch.pixels is not None:
        return runner.run_images(batch.pixels if part is None else batch.pixels[part])
    if part is None:
        return runner.run(batch.input_ids, batch.attention_mask)
    return runner.run(batch.input_ids[part], batch.attention_mask[part])


def _open_errors(path: Path | None, committed_bytes: int) -> IO[bytes] | None:
    """The --errors file, cut back to its committed size on resume, so no line appears twice."""
    if path is None:
        return None
    if committed_bytes == 0:
        return open(path, "wb")  # noqa: SIM115 - closed by run_pipeline
    f = open(path, "r+b")  # noqa: SIM115
    if os.fstat(f.fileno()).st_size < committed_bytes:
        f.close()
        raise OutputError(f"--errors file {path} is shorter than its committed {committed_bytes} bytes (changed "
                          f"outside ignite?); restore it, or pass --overwrite to start over")
    f.truncate(committed_bytes)
    f.seek(committed_bytes)
    return f


def run_pipeline(cfg: EmbedConfig, files: list[InputFile], runner: Runner | list[Runner],
                 tokenizer: WindowTokenizer | ImageFeed,
                 work: WorkDir, start: Committed, stop: StopSignals | None = None,
                 pad_multiple: int | None = None, index: IndexBuilder | None = None,
                 telemetry: Telemetry | None = None, stages_class: type[_Stages] = _Stages) -> RunStats:
    """Embed the inputs from the commit `start` on (a fresh Committed for a new run) and finish
    the outputs; with a stop request, return early with stats.interrupted set. `runner` may be a
    list: one worker per runner (device). `pad_multiple` None: what the runners declare.
    `telemetry`: where the stages count what they do (metrics, the run report). `stages_class`:
    the ingest stages (pipeline/images.ImageStages for images, which take an ImageFeed as
    `tokenizer`); default the text stages."""
    runners = runner if isinstance(runner, list) else [runner]
    telemetry = telemetry or Telemetry(sum(f.size for f in files))
    stop = stop or StopSignals()
    names = [str(f.path) for f in files]
    stats = RunStats(records=start.rows, resumed_rows=start.rows, statuses=collections.Counter(start.statuses))
    stats.failed = sum(n for status, n in start.statuses.items() if status != STATUS_NAMES[OK])
    if cfg.max_errors is not None and stats.failed > cfg.max_errors:
        raise TooManyErrors(f"the run being resumed already has {stats.failed} bad records, more than --max-errors "
                            f"{cfg.max_errors}; raise --max-errors to go on")
    begin = time.perf_counter()
    with _writing(work.path):
        sink = open_sink(cfg.output, cfg.output_kind, work.path, runners[0].dim, cfg.output_dtype, names,
                         cfg.id_field is not None or cfg.image is not None, cfg.shard_rows, start)
    if index is not None and start.rows:
        _index_committed(index, sink, start.rows)
    if not start.done:
        _run_stages(cfg, files, runners, tokenizer, work, start, stop, pad_multiple, sink, stats, names, index,
                    telemetry, stages_class)
    else:
        sink.close()
    stats.damaged = [DamagedInput(names[f], line, reason) for f, line, reason in start.damaged]
    if stats.interrupted is None:
        for item in files:  # an input finished early may have changed since
            check_unchanged(item)
        stop.phase = "finishing"
        try:
            with _writing(cfg.output):
                stats.outputs = sink.finish()
                stats.verified = _verify(cfg, start, runners[0].dim)
        except VerificationError as exc:
            raise VerificationError(f"{exc}: the output is not finished and its work folder {work.path} is kept; "
                                    f"rerun with --resume, or with --overwrite if that fails again") from None
        if index is not None:
            with _writing(index.folder):
                stats.index = index.finish()
        work.remove()
    stats.seconds = time.perf_counter() - begin
    return stats


def _verify(cfg: EmbedConfig, state: Committed, dim: int) -> str:
    """Count what the finished files hold against the commit and its status counts; what was
    verified, for the summary. Raises VerificationError: the run must not exit 0 then."""
    counted = sum(state.statuses.values())
    if counted != state.rows:
        raise VerificationError(f"the run committed {state.rows:,} rows but accounted for {counted:,} records")
    ids = ids_path(cfg.output) if cfg.output_kind == "npy" else None
    return verify_finished(cfg.output_kind, cfg.output, ids, state.rows, dim, cfg.output_dtype)


def check_unchanged(item: InputFile) -> None:
    """Raise InputChanged when `item` is not the file the run listed (appended to, cut, rewritten)."""
    if (how := item.change()) is not None:
        raise InputChanged(f"input {item.path} changed while it was read: {how}; the output would not match it, "
                           f"so it is not finished. Rerun with --overwrite once the input is final")


def _index_committed(index: IndexBuilder, sink: Sink, rows: int) -> None:
    """On resume, the index is rebuilt: the rows committed before are read back from the outputs
    (far faster than embedding them again); zero rows are records without an embedding."""
    log.info("indexing the %s rows committed before the interruption", f"{rows:,}")
    row = 0
    for chunk in sink.committed(rows):
        ok = np.flatnonzero(np.any(chunk != 0, axis=1))
        index.add(ok + row, chunk[ok])
        row += len(chunk)
    if row != rows:
        raise OutputError(f"the work folder holds {row} committed rows, its manifest says {rows}; "
                          f"pass --overwrite to start over")


def _run_stages(cfg: EmbedConfig, files: list[InputFile], runners: list[Runner], tokenizer: WindowTokenizer,
                work: WorkDir, start: Committed, stop: StopSignals, pad_multiple: int | None, sink: Sink,
                stats: RunStats, names: list[str], index: IndexBuilder | None, telemetry: Telemetry,
                stages_class: type[_Stages]) -> None:
    """The reader, tokenizer and worker threads, and the writer loop here. `start` is advanced
    in place to every new commit."""
    stages = stages_class(cfg, files, runners, tokenizer, pad_multiple, start, stop.event, telemetry)
    refusal = stages.ingest_refusal()
    log.debug("ingest: %s", "native pipeline" if refusal is None else f"Python stages ({refusal})")
    threads = [] if refusal is None else stages.ingest_threads()
    threads += [stages.thread(f"worker-{i}.{slot}", functools.partial(stages.embed, i), stages.worker_done)
                for i, n in enumerate(stages.threads_per_device) for slot in range(n)]
    errors_file = None
    progress = Progress(total_bytes=sum(f.size for f in files), enabled=not cfg.quiet, live=telemetry.live_view)
    try:
        with _writing(cfg.errors_path or work.path):
            errors_file = _open_errors(cfg.errors_path, start.errors_bytes)
        stop.phase = "pipeline"
        if refusal is None:
            stages.open_native()
        telemetry.begin(stats, sum(f.size for f in files[:start.file]) + start.offset)
        for t in threads:
            t.start()
        writer = _Writer(stages, sink, work, start, stats, names, errors_file, progress, files, index)
        if stages.pipe is not None:
            writer.loop_native(stages.pipe, stop.event)
        else:
            writer.loop()
        if stages.error is None:
            with writer.clock:
                if stop.event.is_set():
                    stats.interrupted = stop.signum
                    writer.commit()
                else:
                    writer.commit(done=True)
    except BaseException as exc:
        stages.fail(exc)
    finally:
        for t in threads:
            if t.ident is not None:  # started
                t.join()
        telemetry.end("failed" if stages.error is not None else
                      "interrupted" if stats.interrupted is not None else "finishing")
        if stages.pipe is not None:
            stages.pipe.close()
            stats.native_cpu = stages.pipe.cpu_seconds()
        progress.close()
        if stats.interrupted is not None or stages.error is not None:
            sink.close()
        if errors_file:
            try:
                errors_file.close()
            except OSError:
                pass  # a torn tail, cut on resume
    if stages.error is not None:
        raise stages.error


class _Writer:
    """Restores window order, appends complete windows to the outputs and commits them."""

    def __init__(self, stages: _Stages, sink: Sink, work: WorkDir, state: Committed, stats: RunStats,
                 names: list[str], errors_file: IO[bytes] | None, progress: Progress, files: list[InputFile],
                 index: IndexBuilder | None = None) -> None:
        self.stages, self.sink, self.work, self.state, self.stats = stages, sink, work, state, stats
        self.index = index
        self.cfg = stages.cfg
        self.names, self.errors_file, self.progress, self.files = names, errors_file, progress, files
        self.done_bytes = [0] * (len(files) + 1)  # bytes of all files before file i
        for i, f in enumerate(files):
            self.done_bytes[i + 1] = self.done_bytes[i] + f.size
        self.uncommitted_rows = 0
        self.last_commit = time.monotonic()
        self.checked_files = state.file  # files before the commit resumed from were checked by --resume
        self.telemetry = stages.telemetry
        self.clock = self.telemetry.clock("writer")
        self.bytes_done = self.done_bytes[state.file] + state.offset  # input bytes behind the rows appended

    def loop(self) -> None:
        pending: dict[int, Window] = {}
        next_index = self.state.windows
        while (item := self.stages.to_write.get()) is not None:
            if isinstance(item, Window):
                pending[item.index] = item
            else:
                window = item.window
                assert window.embeddings is not None and item.embeddings is not None
                window.embeddings[item.rows] = item.embeddings
                window.batches_done += 1
                self.stats.batches += 1
                self.stats.real_tokens += item.real_tokens
                self.stats.padded_tokens += item.input_ids.size
                if item.storage is not None:  # its ids and mask are read no more: the pool lends them again
                    item.storage.release()
                    item.storage = None
            while next_index in pending and pending[next_index].batches_done == pending[next_index].n_batches:
                with self.clock:
                    self.append(pending.pop(next_index))
                next_index += 1
        if pending and self.stages.error is None:
            raise RuntimeError(f"internal error: {len(pending)} windows never completed")

    def loop_native(self, pipe: Any, stop: threading.Event) -> None:
        """Commit the native pipeline's windows as they complete, in order; Python runs once per
        window here, never per batch or record."""
        while True:
            if stop.is_set():
                pipe.stop()
            item = pipe.next_committable_window(POLL_SECONDS)
            if item is None:
                if pipe.finished:
                    return
                continue
            with self.clock:
                self.stats.batches += item.batches
                self.stats.real_tokens += item.real_tokens
                self.stats.padded_tokens += item.padded_tokens
                self.append(_native_window(item))

    def append(self, window: Window) -> None:
        with _writing(self.cfg.output):
            self.sink.write(window)
        if self.index is not None:
            ok = window.ok_rows
            assert window.embeddings is not None
            with _writing(self.index.folder):
                self.index.add(ok + window.start_row, window.embeddings[ok])
        with _writing(self.cfg.errors_path or self.work.path):
            self._account(window)
        s = self.state
        s.rows, s.windows = window.start_row + len(window), window.index + 1
        end_file, end_line, end_records, end_done = window.end or (
            window.file_index, int(window.lines[-1]) if len(window) else 0, len(window), bool(window.extra.get("last")))
        if end_file != s.file:
            s.file, s.lines, s.records = end_file, 0, 0
        s.lines = end_line if end_records else s.lines
        s.records += end_records
        s.offset, s.file_done = window.end_offset, end_done
        damage = window.extra.get("damage")
        if isinstance(damage, DamagedInput):
            s.damaged.append([window.file_index, damage.line, damage.reason])
        for file, line, reason in window.extra.get("damages", ()):  # type: ignore[attr-defined]
            log.error("%s", DamagedInput(self.names[file], line, reason))
            s.damaged.append([file, line, reason])
        # Files read to their end must still be the files that were listed, before this commits.
        read_upto = s.file + 1 if s.file_done else s.file
        for item in self.files[self.checked_files:read_upto]:
            check_unchanged(item)
        self.checked_files = max(self.checked_files, read_upto)
        self.bytes_done = self.done_bytes[end_file] + window.end_offset
        self.progress.update(self.stats.records, self.bytes_done)
        self.uncommitted_rows += len(window)
        over = self.cfg.max_errors is not None and self.stats.failed > self.cfg.max_errors
        if over or self.uncommitted_rows >= self.cfg.window_records or \
                time.monotonic() - self.last_commit >= COMMIT_SECONDS:
            self.commit()
        if over:
            raise TooManyErrors(f"{self.stats.failed} bad records, more than --max-errors {self.cfg.max_errors}; "
                                f"see the warnings above{' and the --errors file' if self.errors_file else ''}")

    def commit(self, done: bool = False) -> None:
        """fsync the data, then replace the manifest: the protocol's single point of commit."""
        s = self.state
        with _writing(self.cfg.output):
            s.meta_bytes = self.sink.sync()
        if self.errors_file is not None and self.errors_file.tell() != s.errors_bytes:
            with _writing(self.cfg.errors_path or self.work.path):
                self.errors_file.flush()
                os.fsync(self.errors_file.fileno())
                s.errors_bytes = self.errors_file.tell()
        s.statuses, s.done = dict(self.stats.statuses), done
        with _writing(self.work.manifest_file):
            self.work.commit(s)
        with _writing(self.cfg.output):
            self.sink.after_commit()
        self.uncommitted_rows, self.last_commit = 0, time.monotonic()
        self.telemetry.committed(self.bytes_done)

    def _account(self, window: Window) -> None:
        """Count the window's statuses with NumPy; Python runs per bad record only, and only for
        the first warnings or an --errors line."""
        stats, errors_file = self.stats, self.errors_file
        stats.records += len(window)
        bad = np.flatnonzero(window.status != OK)
        failed_before = stats.failed
        stats.failed += len(bad)
        if len(bad):
            # Counted in order of first appearance: the manifest's and report's status dicts keep it.
            codes, first, counts = np.unique(window.status[bad], return_index=True, return_counts=True)
            for at in np.argsort(first, kind="stable"):
                stats.statuses[STATUS_NAMES[codes[at]]] += int(counts[at])
        stats.statuses[STATUS_NAMES[OK]] += len(window) - len(bad)
        # Python per bad record only: all of them for the --errors file, else those the log names
        # (the run's first WARN_FIRST, and the next, whose line says the rest are only counted).
        listed = bad if errors_file is not None else bad[:max(0, WARN_FIRST + 1 - failed_before)]
        for failed, i in enumerate(listed.tolist(), failed_before + 1):
            reason = STATUS_NAMES[window.status[i]]
            if failed <= WARN_FIRST:
                where = f"{self.names[window.file_of(i)]}:{int(window.lines[i])}"
                ident = window.ids[i]  # a tar member's key, an image's path, an --id-field
                log.warning("%s: %s (row %d%s kept as zeros)", where, reason, window.start_row + i,
                            f", id {ident}," if isinstance(ident, str) else "")
            elif failed == WARN_FIRST + 1:
                log.warning("more bad records: counted in the summary%s",
                            "" if errors_file else "; pass --errors FILE to list them all")
            if errors_file is not None:
                errors_file.write(orjson.dumps({"file": self.names[window.file_of(i)], "line": int(window.lines[i]),
                                                "row": window.start_row + i, "id": window.ids[i], "reason": reason}))
                errors_file.write(b"\n")


def _native_window(item: Any) -> Window:
    """A window of the native pipeline (ignite._engine.IngestWindow) as the writer's Window; its
    arrays are views of the native buffers, converted per window, never per record in Python."""
    return Window(index=item.index, start_row=item.start_row, file_index=item.end_file, texts=(),
                  ids=ArenaIds(item.id_bytes, item.id_offsets, item.has_id), lines=item.lines,
                  status=item.status, end_offset=item.end_offset, embeddings=item.embeddings,
                  files=item.files, end=(item.end_file, item.end_line, item.end_records, item.end_done),
                  extra={"damages": item.damage})
