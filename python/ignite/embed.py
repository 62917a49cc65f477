"""`ignite embed`: turn flags into one EmbedConfig, decide between a new run and resuming an
interrupted one, open the model and backend, run the pipeline, print a one-line summary."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ignite import __version__
from ignite.backends import open_backend
from ignite.backends.base import common_capabilities
from ignite.config import EmbedConfig, ImageOptions, ModelOptions, default_cache_dir
from ignite.errors import UsageError
from ignite.hardware import cuda_available, select_gpus, usable_cores
from ignite.images.inputs import expand_image_inputs, wants_images
from ignite.io.inputs import expand_inputs
from ignite.io.manifest import Committed, WorkDir, difference, run_record
from ignite.io.outputs import check_output_path, output_files, output_kind, read_provenance, report_path
from ignite.models import DEFAULT_MODEL, ModelSpec, load_spec, resolve_model
from ignite.models.export import export_onnx, model_fingerprint
from ignite.pipeline.run import run_pipeline
from ignite.pipeline.signals import StopSignals
from ignite.pipeline.writer import RunStats
from ignite.pipeline.tokenize import WindowTokenizer
from ignite.rows.status import MISSING_FIELD, OK
from ignite.telemetry.live import Telemetry
from ignite.telemetry.prometheus import metrics_port, open_metrics

if TYPE_CHECKING:
    from ignite.pipeline.images import ImageFeed

log = logging.getLogger("ignite")

CPU_BATCH_TOKENS = 2048
# A window is the unit of commits: on a CPU (~200 rec/s) a small one keeps a stop to seconds.
CPU_WINDOW_RECORDS = 2048
# Images: a window holds its encoded images until it commits (pixels exist only per batch).
CPU_WINDOW_IMAGES = 256
GPU_WINDOW_IMAGES = 4096
# 16,384 rather than 65,536: a window's text and tokens (~20 MB) stay in the L3 cache from reader to
# packer; with the null model on 2 threads, 436K against 368K records/s and 4.2 against 5.0 CPU us a
# record (benchmarks/results/cpu-2026-12-03), for 0.7% more padding (98.97% against 99.64%).
GPU_WINDOW_RECORDS = 16384
GPU_BATCH_TOKENS = 65536


def _on_gpu(args: argparse.Namespace) -> bool:
    """Whether the run embeds on GPUs (the defaults of batch, window and tokenizer threads differ)."""
    return cuda_available() and args.gpus != "none"


def model_options(spec: ModelSpec, args: argparse.Namespace, tower: str = "text") -> ModelOptions:
    if spec.is_clip and args.pooling is not None:
        raise UsageError(f"model {spec.name} is a CLIP model: each tower pools as CLIP does; drop --pooling")
    if args.prefix is not None and args.prompt_name is not None:
        raise UsageError("give --prefix or --prompt-name, not both")
    if args.prompt_name is not None:
        if args.prompt_name not in spec.prompts:
            known = ", ".join(sorted(spec.prompts)) or "none"
            raise UsageError(f"model {spec.name} has no prompt {args.prompt_name!r} (its prompts: {known}); "
                             f"use --prefix for a literal prefix")
        prefix = spec.prompts[args.prompt_name]
    elif args.prefix is not None:
        prefix = args.prefix
    else:
        prefix = spec.prompts.get(spec.default_prompt, "") if spec.default_prompt else ""
    max_length = args.max_length or spec.max_length
    if max_length > spec.max_position:
        raise UsageError(f"--max-length {max_length} exceeds what model {spec.name} supports ({spec.max_position})")
    if args.dim is not None and spec.hidden_size and args.dim > spec.hidden_size:
        raise UsageError(f"--dim {args.dim} exceeds the model's dimension {spec.hidden_size}")
    return ModelOptions(
        pooling=args.pooling or spec.pooling,
        normalize=spec.normalize if args.normalize is None else args.normalize,
        max_length=max_length, prefix=prefix, dim=args.dim, tower=tower,
    )


def build_config(args: argparse.Namespace) -> tuple[EmbedConfig, ModelSpec, list, list[str | None] | None]:
    """The run's config, model, input files and, for an image run, each loose image's id."""
    images = wants_images(args.input, args.image_field)
    names = None
    if images:
        image_inputs = expand_image_inputs(args.input, args.image_field)
        files, names = image_inputs.files, image_inputs.names
    else:
        files = expand_inputs(args.input)
    output: Path = args.output
    kind = output_kind(output)  # its folder, and that of --errors, exist: the lock files are in them
    check_output_path(output, kind, [f.resolved for f in files])
    model_name = args.model or DEFAULT_MODEL
    spec = load_spec(resolve_model(model_name), model_name)
    if images and not spec.is_clip:
        raise UsageError(f"the inputs are images but model {model_name} has no vision tower; pass a CLIP model "
                         f"with --model")
    options = model_options(spec, args, tower="vision" if images else "text")
    gpu = _on_gpu(args)
    if images:
        window_records = args.window_records or (GPU_WINDOW_IMAGES if gpu else CPU_WINDOW_IMAGES)
    else:
        window_records = args.window_records or (GPU_WINDOW_RECORDS if gpu else CPU_WINDOW_RECORDS)
    cfg = EmbedConfig(
        inputs=tuple(f.path for f in files), output=output, output_kind=kind,
        field=(args.image_field or "image") if images else args.field,
        id_field=args.id_field, model_name=model_name, model_path=spec.path, model=options,
        backend=args.backend, dtype=args.dtype, output_dtype=args.output_dtype,
        batch_tokens=args.batch_tokens or (GPU_BATCH_TOKENS if gpu else CPU_BATCH_TOKENS),
        window_records=window_records,
        shard_rows=args.shard_rows,
        cache_dir=args.cache_dir or default_cache_dir(), threads=args.threads or usable_cores(),
        quiet=args.quiet, overwrite=args.overwrite, errors_path=args.errors, max_errors=args.max_errors,
        image=ImageOptions(args.image_field, args.max_image_pixels, args.image_decode) if images else None,
        commit_seconds=args.commit_interval,
    )
    return cfg, spec, files, names


def _check_field(files: list, field: str) -> None:
    """Fail fast, before loading a model, when the text field is absent from the first records of
    the first JSONL file that has any (a typo in --field), rather than reporting every record as
    missing_field. One file, not each: a million small files would cost a minute here, and a file
    without the field in a corpus that has it is bad data, which its rows' statuses report."""
    from ignite.io.readers import RecordReader

    for item in files:
        if item.format != "jsonl":
            continue
        reader = RecordReader(item, field, None, 64)
        first = next(iter(reader.windows()), None)
        statuses = first.status[:64] if first is not None else ()
        if not len(statuses):
            continue
        if bool((statuses == MISSING_FIELD).all()):
            raise UsageError(f"{item.path}: no record among the first {len(statuses)} has field {field!r}; "
                             f"name the text field with --field")
        return


def _plan(cfg: EmbedConfig, work: WorkDir, resume: bool, overwrite: bool) -> str:
    """fresh | resume | complete, from what exists of the output and its work folder; refuses
    to touch them unless told how (--resume or --overwrite)."""
    expected = output_files(cfg.output, cfg.output_kind)
    finals = [p for p in expected if p.exists()]
    if resume and overwrite:
        raise UsageError("give --resume (continue the interrupted run) or --overwrite (start over), not both")
    if overwrite:
        return "fresh"
    if resume:
        # Safe on a first run too, so a restart policy can always pass --resume.
        if work.exists() or not finals:
            return "resume" if work.exists() else "fresh"
        if len(finals) < len(expected):
            raise UsageError(f"{cfg.output} is incomplete ({finals[0]} without "
                             f"{next(p for p in expected if not p.exists())}) and has no work folder to resume "
                             f"from; pass --overwrite to redo it")
        return "complete"
    if work.exists():
        raise UsageError(f"{work.path} holds an interrupted run of {cfg.output}: pass --resume to continue it, "
                         f"or --overwrite to start over")
    if finals:
        raise UsageError(f"output {finals[0]} already exists; pass --overwrite to replace it")
    return "fresh"


def _tunable(cfg: EmbedConfig) -> bool:
    """A CPU run whose backend or precision is left to Ignite (int8 is never chosen for you)."""
    return (cfg.backend == "auto" or cfg.dtype == "auto") and cfg.dtype != "int8" and \
        cfg.backend in ("auto", "openvino", "onnxruntime", "torch")


def _measured_cpu_runner(cfg: EmbedConfig, spec: ModelSpec, files: list, tokenizer: WindowTokenizer,
                         fingerprint: str):  # type: ignore[no-untyped-def]
    """The runner of the fastest faithful backend/precision pair on this CPU, measured on the
    first records of the input once per machine and model (then cached); None when the input
    has no record to measure with."""
    from ignite.backends import autotune, open_cpu_pair
    from ignite.io.readers import RecordReader

    pairs, notes = autotune.candidates(cfg.backend, cfg.dtype)
    key = autotune.cache_key(fingerprint, dataclasses.asdict(cfg.model), cfg.threads, cfg.batch_tokens, pairs)

    def open_pair(backend: str, dtype: str, streams: int | None = None):  # type: ignore[no-untyped-def]
        return open_cpu_pair(backend, dtype, spec, cfg.model, cfg.cache_dir, cfg.threads, cfg.batch_tokens, streams)

    if (choice := autotune.load(cfg.cache_dir, key)) is not None:
        log.info("auto: %s, as measured before on this machine: %s", choice.label, choice.why)
        return open_pair(choice.backend, choice.dtype, choice.streams)
    first = next(iter(RecordReader(files[0], cfg.field, None, autotune.SAMPLE_RECORDS).windows()), None)
    texts = [t for t, s in zip(first.texts, first.status) if s == OK] if first is not None else []
    if not texts:
        return None
    token_ids, offsets = tokenizer.encode(texts)
    batches = autotune.calibration_batches(token_ids, offsets, tokenizer.pad_id, cfg.batch_tokens)
    if any(b in ("openvino", "onnxruntime") for b, _ in pairs):
        export_onnx(spec, cfg.model, cfg.cache_dir)  # what any run of these backends pays once: not the choice's cost
    choice, runner = autotune.measure(pairs, open_pair, batches, notes, cfg.threads)
    autotune.store(cfg.cache_dir, key, choice)
    log.info("auto: %s (measured in %.1fs on %d of your records; cached for this machine and model)",
             choice.why, choice.seconds, len(texts))
    return runner


def _int8_runner(cfg: EmbedConfig, spec: ModelSpec, files: list, tokenizer: WindowTokenizer):  # type: ignore[no-untyped-def]
    """The NNCF int8 model (calibrated on the input's first distinct records where static), with
    its fidelity to fp32 on the next ones (held apart, searched among more) said in the log, and a
    warning when it falls short."""
    from ignite.backends import autotune, open_int8
    from ignite.backends.openvino import INT8_PAD_MULTIPLE
    from ignite.io.readers import RecordReader
    from ignite.models.quantize import (CALIBRATION_RECORDS, HELD_APART_RECORDS, INDEX_RECORDS, MEAN_COSINE_GOAL,
                                        RECALL_GOAL)

    want = CALIBRATION_RECORDS + max(HELD_APART_RECORDS, INDEX_RECORDS)
    texts: dict[str, None] = {}  # distinct, in input order: a duplicate would tie in the recall
    for item in files:
        for window in RecordReader(item, cfg.field, None, want).windows():
            texts.update((t, None) for t, s in zip(window.texts, window.status) if s == OK)
            if len(texts) >= want:
                break
        if len(texts) >= want:
            break
    sample = list(texts)[:want]
    held = CALIBRATION_RECORDS + HELD_APART_RECORDS
    calibration, held_apart, index_only = sample[:CALIBRATION_RECORDS], sample[CALIBRATION_RECORDS:held], sample[held:]

    def batches(part: list[str]) -> list:
        if not part:
            return []
        token_ids, offsets = tokenizer.encode(part)
        # padded as the run pads them, so the fidelity and timing measured are the run's
        return autotune.calibration_batches(token_ids, offsets, tokenizer.pad_id, cfg.batch_tokens, count=None,
                                            pad_multiple=INT8_PAD_MULTIPLE)

    runner, fidelity = open_int8(cfg.backend, spec, cfg.model, cfg.cache_dir, cfg.threads, batches(calibration),
                                 batches(held_apart), batches(index_only))
    log.info("int8 (%s): %s", fidelity.name, fidelity.describe())
    if not fidelity.faithful:
        log.warning("int8 falls short of mean cosine %.2f and recall@10 %.2f against fp32 here: its embeddings "
                    "are not those of the same model; use --dtype fp32 or bf16 for exact ones",
                    MEAN_COSINE_GOAL, RECALL_GOAL)
    return runner


def _check_still_complete(cfg: EmbedConfig, run: dict) -> None:
    """A finished output is complete for *these* inputs and options only: refuse to call it so
    when an input grew, shrank or was rewritten since, or an option differs."""
    for path in output_files(cfg.output, cfg.output_kind):
        if path.suffix == ".parquet" and (provenance := read_provenance(path)) is not None:
            if (why := difference(json.loads(provenance), run)) is not None:
                raise UsageError(f"{cfg.output} is finished but does not match this run: {why}; "
                                 f"pass --overwrite to redo it")
            return


def _remove_outputs(cfg: EmbedConfig) -> None:
    for path in output_files(cfg.output, cfg.output_kind):
        path.unlink(missing_ok=True)


def embed_from_args(args: argparse.Namespace, stop: StopSignals) -> int:
    cfg, spec, files, image_names = build_config(args)
    telemetry = Telemetry(sum(f.size for f in files))
    info = {"model": cfg.model_name, "output": str(cfg.output), "version": __version__}
    with open_metrics(telemetry, info, metrics_port(args.metrics_port), args.metrics_file,
                      args.metrics_file_interval):
        return _embed(args, cfg, spec, files, image_names, stop, telemetry, info)


def _embed(args: argparse.Namespace, cfg: EmbedConfig, spec: ModelSpec, files: list, image_names: list[str] | None,
           stop: StopSignals, telemetry: Telemetry, info: dict[str, str]) -> int:
    shard = None
    if args.shard is not None and cfg.image is not None:
        raise UsageError("--shard takes text inputs only for now; split image inputs between tasks by file instead")
    if args.shard is not None:
        from ignite.shards.run import open_shard

        shard = open_shard(args, cfg, spec, files)
        if shard.complete:
            return 0
        files = shard.files
    work = WorkDir(cfg.output)
    plan = _plan(cfg, work, args.resume, args.overwrite)
    run = run_record(cfg, files, model_fingerprint(spec))
    if plan == "complete":
        _check_still_complete(cfg, run)
        log.info("%s is already complete (no interrupted run to resume); pass --overwrite to redo it", cfg.output)
        return 0
    start: Committed | None = None
    if plan == "resume" and (loaded := work.load()) is not None:
        saved, start = loaded
        if (why := difference(saved, run)) is not None:
            raise UsageError(f"cannot resume {cfg.output}: {why}; rerun with the inputs and options of the "
                             f"interrupted run, or pass --overwrite to start over")
    if cfg.image is None:
        _check_field(files, cfg.field)
    # On the CPU the model takes the cores and the tokenizer one thread of its own, so they do not
    # fight over a small machine (it tokenizes ~200-300K records/s per core). On GPU the cores feed
    # the devices: eight of them take over 1M records/s; two are left to the reader and writer.
    tokenizer_threads = args.tokenizer_threads or (max(1, usable_cores() - 2) if _on_gpu(args) else 1)
    tokenizer = WindowTokenizer(spec.tokenizer_path, cfg.model.max_length, cfg.model.prefix,
                                threads=tokenizer_threads)
    # One runner (and worker thread) per GPU; on a machine without one, one on the CPU, chosen by
    # measurement where --backend or --dtype is auto (text: the measurement feeds it texts; an
    # image run takes --backend auto's fixed order).
    devices = select_gpus(args.gpus) or [None]
    if devices == [None] and cfg.dtype == "int8":
        if cfg.image is not None:
            raise UsageError("--dtype int8 is calibrated on text records; embed images in fp32 or bf16")
        runners = [_int8_runner(cfg, spec, files, tokenizer)]
    elif devices == [None] and _tunable(cfg) and cfg.image is None:
        runners = [_measured_cpu_runner(cfg, spec, files, tokenizer, run["options"]["model_fingerprint"])]
    else:
        runners = []
    runners = [r for r in runners if r is not None] or [
        open_backend(cfg.backend, cfg.dtype, spec, cfg.model, cfg.cache_dir, cfg.threads, device=device,
                     batch_tokens=cfg.batch_tokens) for device in devices]
    runner = runners[0]
    if cfg.image is not None:
        feed = image_feed(cfg, spec, image_names or [], runner)
        log.info("model %s: CLIP vision tower (dim %d) on %s %s %s; images preprocessed by %s; %d input file(s)",
                 spec.name, runner.dim, runner.name, ",".join(r.device for r in runners), runner.dtype,
                 getattr(feed.preprocessor, "name", type(feed.preprocessor).__name__), len(files))
    else:
        log.info("model %s (%s%s, max %d tokens, dim %d) on %s %s %s; tokenizer %s; %d input file(s)",
                 spec.name, "CLIP text tower" if spec.is_clip else f"{cfg.model.pooling} pooling",
                 ", normalized" if cfg.model.normalize else "", cfg.model.max_length, runner.dim, runner.name,
                 ",".join(r.device for r in runners), runner.dtype, tokenizer.path, len(files))
    if start is None:
        start = work.create(run)  # first, so that a crash from here on leaves a run to resume
        _remove_outputs(cfg)
    else:
        if not start.done and cfg.output_kind != "dir":
            _remove_outputs(cfg)  # only finishing writes them: any there now are stale
        log.info("resuming %s after %s committed rows", cfg.output, f"{start.rows:,}")
    pad_multiple = common_capabilities(runners).pad_multiple  # what every device accepts
    index = None
    if args.index is not None:
        index = _prepare_index(args, cfg, spec, files, tokenizer if cfg.image is None else feed, runner, pad_multiple,
                               resumed=start.rows > 0)
    info.update(backend=runner.name, dtype=runner.dtype, devices=",".join(r.device for r in runners))
    telemetry.total_bytes = sum(f.size for f in files)
    outcome, report = "failed", None
    try:
        if cfg.image is not None:
            from ignite.pipeline.images import ImageStages

            stats = run_pipeline(cfg, files, runners, feed, work, start, stop, pad_multiple=pad_multiple, index=index,
                                 telemetry=telemetry, stages_class=ImageStages)
        else:
            stats = run_pipeline(cfg, files, runners, tokenizer, work, start, stop, pad_multiple=pad_multiple,
                                 index=index, telemetry=telemetry)
        outcome = "finished" if stats.interrupted is None else f"interrupted by {signal.Signals(stats.interrupted).name}"
    except BaseException as exc:
        outcome = f"failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        raise
    finally:
        report = _write_report(cfg, telemetry, outcome, runners, tokenizer.threads, index is not None)
    if stats.interrupted is not None:
        name = signal.Signals(stats.interrupted).name
        print(f"ignite: interrupted by {name}: {stats.records:,} rows of {cfg.output} committed; "
              f"rerun with --resume to continue", file=sys.stderr)
        return 128 + stats.interrupted
    _summary(cfg, stats, report, spec.is_clip)
    if shard is not None:
        shard.finish()
    if stats.damaged:
        for d in stats.damaged:
            print(f"ignite: error: {d} (records before it were embedded)", file=sys.stderr)
        return 4
    return 0


def image_feed(cfg: EmbedConfig, spec: ModelSpec, names: list[str | None], runner: object):  # type: ignore[no-untyped-def]
    """The image stages' ImageFeed: the preprocessor from the model's preprocessor_config.json,
    batches of a size that suits the device."""
    from ignite.images.preprocess import ImageSpec, make_preprocessor
    from ignite.pipeline.images import CPU_BATCH_IMAGES, GPU_BATCH_IMAGES, ImageFeed

    assert cfg.image is not None
    image_spec = ImageSpec.from_model_dir(spec.path)
    preprocessor = make_preprocessor(image_spec, mode=cfg.image.decode, max_pixels=cfg.image.max_pixels)
    on_gpu = str(getattr(runner, "device", "cpu")).startswith("cuda")
    return ImageFeed(preprocessor, image_spec.shape, names, cfg.image.field, cfg.id_field,
                     GPU_BATCH_IMAGES if on_gpu else CPU_BATCH_IMAGES)


def _prepare_index(args: argparse.Namespace, cfg: EmbedConfig, spec: ModelSpec, files: list,
                   tokenizer: WindowTokenizer | ImageFeed, runner: object, pad_multiple: int,
                   resumed: bool):  # type: ignore[no-untyped-def]
    from ignite.index.inline import prepare_index
    from ignite.io.outputs import ids_path

    if resumed:
        # The index is rebuilt from the committed rows (see run._index_committed): drop old shards.
        for stale in list(args.index.glob("shard-*.faiss")) + list(args.index.glob("merged.faiss")):
            stale.unlink()
    if cfg.output_kind == "npy":
        row_metadata = [str(ids_path(cfg.output).resolve())]
    elif cfg.output_kind == "dir":
        row_metadata = [str(cfg.output.resolve() / "part-*.parquet")]
    else:
        row_metadata = []
    metadata = {"embedding": {"model": cfg.model_name, "options": dataclasses.asdict(cfg.model), "field": cfg.field,
                              "output": str(cfg.output.resolve())},
                "row_metadata": row_metadata}
    if cfg.image is not None:
        from ignite.index.inline import prepare_image_index

        return prepare_image_index(args.index, args.index_type, args.index_memory, args.index_shard_size, files,
                                   tokenizer, runner, metadata, trained=args.index_trained)
    return prepare_index(args.index, args.index_type, args.index_memory, args.index_shard_size, files, cfg.field,
                         tokenizer, runner, cfg.batch_tokens, pad_multiple, metadata, trained=args.index_trained)


def _write_report(cfg: EmbedConfig, telemetry: Telemetry, outcome: str, runners: list, tokenizer_threads: int,
                  index: bool) -> dict | None:
    """OUT.report.json, whatever the outcome; a report that cannot be written is a warning, never
    the run's failure."""
    from ignite.telemetry import report as run_report

    telemetry.phase = "done" if outcome == "finished" else telemetry.phase
    gpus = [r.device for r in runners if str(r.device).startswith("cuda")]
    config = json.loads(json.dumps(cfg.as_dict(), default=str))
    report = run_report.build(telemetry, config, outcome, gpus, tokenizer_threads, index)
    path = report_path(cfg.output)
    try:
        run_report.write(path, report)
    except OSError as exc:
        log.warning("cannot write the run report %s: %s", path, exc.strerror or exc)
    return report


def _summary(cfg: EmbedConfig, stats: RunStats, report: dict | None = None, clip: bool = False) -> None:
    new = stats.records - stats.resumed_rows
    rate = new / stats.seconds if stats.seconds else 0.0
    resumed = f" (resumed after {stats.resumed_rows:,})" if stats.resumed_rows else ""
    failed = ""
    if stats.failed:
        reasons = ", ".join(f"{k} {v}" for k, v in stats.statuses.most_common() if k != "ok")
        failed = f"; {stats.failed:,} failed ({reasons})"
    if cfg.image is not None:
        what, how = "images with the CLIP vision tower", ""
    else:
        what = "texts with the CLIP text tower" if clip else "records"
        how = f", padding efficiency {100 * stats.padding_efficiency:.0f}%"
    log.info("embedded %s %s%s in %.1fs (%s rec/s%s)%s -> %s", f"{new:,}", what, resumed, stats.seconds,
             f"{rate:,.0f}", how, failed, ", ".join(str(p) for p in stats.outputs))
    log.info("verified: %s", stats.verified)
    if report is not None and report["bottleneck"]["stage"] is not None:
        log.info("bottleneck: %s (report: %s)", report["bottleneck"]["advice"], report_path(cfg.output))
    if stats.index is not None:
        recall = stats.index.get("recall") or {}
        log.info("index %s: %s vectors in %d shard(s), recall@10 %s at nprobe %s on %s held-out queries, "
                 "%.1fs spent on the index", stats.index["factory"], f"{stats.index['count']:,}",
                 len(stats.index["shards"]), recall.get("recall_at_10", "n/a"), stats.index.get("nprobe", 0),
                 recall.get("queries", 0), stats.index.get("build_seconds", 0.0))
