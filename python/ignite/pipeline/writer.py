"""The writer, on the calling thread: restores window order, appends complete windows to the
outputs (and the index), accounts their statuses and commits them (see io/manifest.py for what a
commit records)."""
from __future__ import annotations

import collections
import errno
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator, Protocol

import numpy as np
import orjson

from ignite import faults
from ignite.errors import InputChanged, OutputError, TooManyErrors
from ignite.io.inputs import InputFile
from ignite.io.manifest import Committed, WorkDir
from ignite.io.outputs import Sink
from ignite.io.readers import DamagedInput
from ignite.pipeline.channel import POLL_SECONDS
from ignite.progress import Progress
from ignite.rows.status import OK, STATUS_NAMES
from ignite.rows.window import ArenaIds, Window

if TYPE_CHECKING:
    from ignite.pipeline.stages import Stages

log = logging.getLogger(__name__)

WARN_FIRST = 10  # bad records named one by one in the log; the rest are counted


class RowObserver(Protocol):
    """Given the embedded rows as the writer appends them, and finished with the outputs: the
    FAISS index with --index (index/builder.IndexBuilder). A protocol, so that pipeline/ does not
    import index/ (which uses the pipeline's tokenizer and encoders)."""

    folder: Path  # what it writes to, named when a write fails

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None: ...

    def finish(self) -> dict[str, Any]: ...


@dataclass
class RunStats:
    """What a run did: the writer accounts the records, run_pipeline adds how it ended."""

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
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write into one line naming the file and the way on."""
    try:
        yield
    except OSError as exc:
        raise _write_error(exc, path) from None


def check_unchanged(item: InputFile) -> None:
    """Raise InputChanged when `item` is not the file the run listed (appended to, cut, rewritten)."""
    if (how := item.change()) is not None:
        raise InputChanged(f"input {item.path} changed while it was read: {how}; the output would not match it, "
                           f"so it is not finished. Rerun with --overwrite once the input is final")


def open_errors(path: Path | None, committed_bytes: int) -> IO[bytes] | None:
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


class Writer:
    """Restores window order, appends complete windows to the outputs and commits them."""

    def __init__(self, stages: Stages, sink: Sink, work: WorkDir, state: Committed, stats: RunStats,
                 names: list[str], errors_file: IO[bytes] | None, progress: Progress, files: list[InputFile],
                 index: RowObserver | None = None) -> None:
        self.stages, self.sink, self.work, self.state, self.stats = stages, sink, work, state, stats
        self.index = index
        self.cfg = stages.cfg
        self.names, self.errors_file, self.progress, self.files = names, errors_file, progress, files
        self.done_bytes = [0] * (len(files) + 1)  # bytes of all files before file i
        for i, f in enumerate(files):
            self.done_bytes[i + 1] = self.done_bytes[i] + f.size
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
        with writing(self.cfg.output):
            self.sink.write(window)
        if self.index is not None:
            ok = window.ok_rows
            assert window.embeddings is not None
            with writing(self.index.folder):
                self.index.add(ok + window.start_row, window.embeddings[ok])
        with writing(self.cfg.errors_path or self.work.path):
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
        over = self.cfg.max_errors is not None and self.stats.failed > self.cfg.max_errors
        # Not every window: a commit (two fsyncs, a manifest rewrite) costs about 2 ms, which once a
        # window made the writer the serial bottleneck. Also at the end and on a stop.
        if over or time.monotonic() - self.last_commit >= self.cfg.commit_seconds:
            self.commit()
        if over:
            raise TooManyErrors(f"{self.stats.failed} bad records, more than --max-errors {self.cfg.max_errors}; "
                                f"see the warnings above{' and the --errors file' if self.errors_file else ''}")

    def commit(self, done: bool = False) -> None:
        """fsync the data, then replace the manifest: the protocol's single point of commit."""
        s = self.state
        with writing(self.cfg.output):
            s.meta_bytes = self.sink.sync()
        if self.errors_file is not None and self.errors_file.tell() != s.errors_bytes:
            with writing(self.cfg.errors_path or self.work.path):
                self.errors_file.flush()
                os.fsync(self.errors_file.fileno())
                s.errors_bytes = self.errors_file.tell()
        s.statuses, s.done = dict(self.stats.statuses), done
        with writing(self.work.manifest_file):
            self.work.commit(s)
        with writing(self.cfg.output):
            self.sink.after_commit()
        if faults.active("slow-commit"):
            time.sleep(0.2)
        self.last_commit = time.monotonic()
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
