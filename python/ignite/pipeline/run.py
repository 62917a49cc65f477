"""Embed the inputs from a commit on and finish the outputs: run_pipeline wires the stages
(pipeline/stages.py: ingest, pipeline/dispatch.py: device workers) to the writer
(pipeline/writer.py), which commits whole windows in input order on the calling thread. The first
exception in any stage cancels the run and is re-raised here; a SIGINT/SIGTERM
(pipeline/signals.py) stops reading, lets the windows in flight commit, and returns."""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ignite import faults
from ignite.backends.base import Runner
from ignite.config import EmbedConfig
from ignite.errors import OutputError, TooManyErrors, VerificationError
from ignite.io.inputs import InputFile
from ignite.io.manifest import Committed, WorkDir
from ignite.io.outputs import Sink, ids_path, open_sink
from ignite.io.readers import DamagedInput
from ignite.io.verify import verify_finished
from ignite.pipeline.signals import StopSignals
from ignite.pipeline.stages import Stages
from ignite.pipeline.tokenize import WindowTokenizer
from ignite.pipeline.writer import RowObserver, RunStats, Writer, check_unchanged, open_errors, writing
from ignite.progress import Progress
from ignite.rows.status import OK, STATUS_NAMES
from ignite.telemetry.live import Telemetry

if TYPE_CHECKING:
    from ignite.pipeline.images import ImageFeed

log = logging.getLogger(__name__)

# The workers and the writer hold the GIL in short bursts (a batch's hand-over, a window's
# commit) and would each wait out CPython's 5 ms switch interval behind any CPU-bound Python
# thread (the caller's, a progress callback's). Measured with a thread spinning beside a
# null-model run at GPU batch sizes: 72% of the throughput lost at 5 ms, 23% at 0.5 ms. At CPU
# sizes, whole calls against a spinning process (median of 4): 14% lost at 0.5 ms, none at 0.1 ms,
# with the run alone and the spinner's own rate no slower.
GIL_SWITCH_SECONDS = 0.0001


@contextlib.contextmanager
def _short_gil_turns() -> Iterator[None]:
    """CPython's GIL switch interval at most GIL_SWITCH_SECONDS while the outputs are opened, the stages
    run and the outputs are finished."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, GIL_SWITCH_SECONDS))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_pipeline(cfg: EmbedConfig, files: list[InputFile], runner: Runner | list[Runner],
                 tokenizer: WindowTokenizer | ImageFeed,
                 work: WorkDir, start: Committed, stop: StopSignals | None = None,
                 pad_multiple: int | None = None, index: RowObserver | None = None,
                 telemetry: Telemetry | None = None, stages_class: type[Stages] = Stages) -> RunStats:
    """Embed the inputs from the commit `start` on (a fresh Committed for a new run) and finish
    the outputs; with a stop request, return early with stats.interrupted set. `runner` may be a
    list: one worker per runner (device). `pad_multiple` None: what the runners declare.
    `index`: given the embedded rows and finished with the outputs (the FAISS index, with --index).
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
    # Opening and finishing the outputs as well as the stages: each hands the GIL over many times.
    with _short_gil_turns():
        with writing(work.path):
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
                with writing(cfg.output):
                    stats.outputs = sink.finish()
                    if faults.active("die-after-finish"):
                        os._exit(137)
                    stats.verified = _verify(cfg, start, runners[0].dim)
            except VerificationError as exc:
                raise VerificationError(f"{exc}: the output is not finished and its work folder {work.path} is kept; "
                                        f"rerun with --resume, or with --overwrite if that fails again") from None
            if index is not None:
                with writing(index.folder):
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


def _index_committed(index: RowObserver, sink: Sink, rows: int) -> None:
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
                stats: RunStats, names: list[str], index: RowObserver | None, telemetry: Telemetry,
                stages_class: type[Stages]) -> None:
    """The reader, tokenizer and worker threads, and the writer loop here. `start` is advanced
    in place to every new commit."""
    stages = stages_class(cfg, files, runners, tokenizer, pad_multiple, start, stop.event, telemetry)
    refusal = stages.ingest_refusal()
    log.debug("ingest: %s", "native pipeline" if refusal is None else f"Python stages ({refusal})")
    threads = ([] if refusal is None else stages.ingest_threads()) + stages.worker_threads()
    errors_file = None
    progress = Progress(total_bytes=sum(f.size for f in files), enabled=not cfg.quiet, live=telemetry.live_view)
    stop.enter_pipeline()
    try:
        with writing(cfg.errors_path or work.path):
            errors_file = open_errors(cfg.errors_path, start.errors_bytes)
        if refusal is None:
            stages.open_native()
        telemetry.begin(stats, sum(f.size for f in files[:start.file]) + start.offset)
        for t in threads:
            t.start()
        writer = Writer(stages, sink, work, start, stats, names, errors_file, progress, files, index)
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
