"""TensorRT backend: the exported ONNX graph (pooling and normalisation inside) built into a
TensorRT engine by the native core (engine/trt, bound as ignite._engine.TrtSession), cached
under the cache directory by graph, GPU, TensorRT version, precision and profiles.

The engine has one optimisation profile per sequence-length bucket, sized from the batcher's
token budget, and runs two batches in flight: `run` is thread-safe (two worker threads on one
runner keep both slots busy), and `submit`/`wait` pipeline from a single thread."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ignite.backends.base import GPU_PAD_MULTIPLE, MAX_ROWS, BackendUnavailable, Capabilities, default_buckets

PRECISIONS = ("fp32", "fp16", "bf16")


def native_engine() -> Any:
    """ignite._engine if it was built with TensorRT, else BackendUnavailable saying how to get it."""
    try:
        from ignite import _engine
    except ImportError as exc:
        raise BackendUnavailable(f"the native module ignite._engine cannot be loaded ({exc})") from None
    if not hasattr(_engine, "TrtSession"):
        raise BackendUnavailable(
            "this build of ignite._engine has no TensorRT: reinstall where TensorRT is installed "
            "(CMAKE_ARGS=-DTENSORRT_ROOT=/path/to/TensorRT pip install .) or use the Docker image")
    return _engine


def cuda_index(device: str) -> int:
    """'cuda' or 'cuda:N' to N (an index among the GPUs this process sees)."""
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise BackendUnavailable(f"the tensorrt backend runs on a CUDA GPU, not {device!r}")


def unavailable(what: str, exc: BaseException) -> BackendUnavailable:
    """One line for the user (TensorRT's messages can span several), naming the error's kind."""
    return BackendUnavailable(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}")


def check_gpu(engine: Any, device: str) -> int:
    index = cuda_index(device)
    try:
        count = engine.cuda_device_count()
    except engine.EngineError as exc:
        raise BackendUnavailable(f"CUDA cannot be used here: {exc}") from None
    if count == 0:
        raise BackendUnavailable("no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES)")
    if index >= count:
        raise BackendUnavailable(f"{device} does not exist: this process sees {count} GPU(s)")
    return index


class TensorRTRunner:
    name = "tensorrt"

    def __init__(self, onnx_path: str | os.PathLike, cache_dir: str | os.PathLike, device: str = "cuda:0",
                 dtype: str = "bf16", batch_tokens: int = 65536, max_length: int = 512,
                 buckets: Sequence[int] | None = None, max_rows: int = MAX_ROWS, opt_level: int = 3,
                 warmup: bool = True) -> None:
        engine = native_engine()
        if dtype not in PRECISIONS:
            raise BackendUnavailable(f"the tensorrt backend runs {', '.join(PRECISIONS)}, not {dtype}")
        index = check_gpu(engine, device)
        # Every engine error (a bad graph or cache folder, a missing file, CUDA, TensorRT, a GPU
        # short of memory in the warm-up) means this backend cannot run here; a build cancelled by
        # a signal is the user's stop and goes up as it is.
        try:
            self._session = engine.TrtSession(
                str(onnx_path), str(cache_dir), index, dtype, int(batch_tokens), int(max_length),
                list(buckets or default_buckets(int(max_length))), max_rows=int(max_rows), opt_level=int(opt_level),
                strongly_typed=True)
            if warmup:
                self._warm_up(int(batch_tokens))
        except engine.Cancelled:
            raise
        except engine.EngineError as exc:
            raise unavailable("TensorRT cannot run this model here", exc) from None
        self.device = f"cuda:{index}"
        # Strongly typed on TensorRT 10 as on 11 (where it is the only mode): the engine computes
        # in the ONNX graph's types, exported in `dtype`, and the builder refuses any other.
        self.dtype = self._session.precision
        self.dim = int(self._session.dim)
        self.engine_path = Path(self._session.engine_path)
        self.engine_built = bool(self._session.built)
        # Its engine's profiles end at max_length and max_rows; tensor cores want widths of 8.
        self.capabilities = Capabilities(max_rows=int(max_rows), max_length=int(max_length),
                                         pad_multiple=GPU_PAD_MULTIPLE, slots=int(self._session.slots))

    def _warm_up(self, batch_tokens: int) -> None:
        """A full batch at the top of every bucket on every slot: each execution context runs once
        (its lazy set-up happens now) and a GPU short of memory fails here, not mid-run."""
        for _min_seq, max_seq, _opt_rows, max_rows in self._session.profiles:
            rows = max(1, min(max_rows, batch_tokens // max_seq))
            ones = np.ones((rows, max_seq), dtype=np.int32)
            slots = [self._session.submit(ones, ones) for _ in range(self._session.slots)]
            for slot in slots:
                self._session.wait(slot)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """[rows, seq] int32 ids and mask -> [rows, dim] float32; thread-safe."""
        return self._session.run(input_ids, attention_mask)

    def native_backend(self) -> Any:
        """The session as an ignite._engine.NativeBackend: on the native ingest path each worker
        thread (one per slot) runs its batches with no Python per batch."""
        return self._session.native_backend()

    def submit(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> int:
        """Queue a batch (waiting for a free slot) and return its slot for wait(); the arrays may be
        reused as soon as this returns."""
        return self._session.submit(input_ids, attention_mask)

    def wait(self, slot: int) -> np.ndarray:
        """The [rows, dim] float32 embeddings of the batch on `slot`; call once per submit."""
        return self._session.wait(slot)

    @property
    def slots(self) -> int:
        return int(self._session.slots)


def open_tensorrt(spec: Any, options: Any, cache_dir: os.PathLike, device: str, dtype: str,
                  batch_tokens: int) -> TensorRTRunner:
    """For backends._open: checks that TensorRT can run here before exporting the ONNX graph (once,
    cached), then opens the runner with engines cached under <cache_dir>/tensorrt."""
    if options.tower != "text":
        raise BackendUnavailable("the tensorrt backend builds text graphs only; a CLIP vision tower runs on torch")
    engine = native_engine()
    if dtype not in PRECISIONS:
        raise BackendUnavailable(f"the tensorrt backend runs {', '.join(PRECISIONS)}, not {dtype}")
    check_gpu(engine, device)
    from ignite.models.export import export_onnx

    try:
        onnx_path = export_onnx(spec, options, Path(cache_dir), dtype)
    except (ImportError, RuntimeError, OSError, ValueError) as exc:  # torch.onnx's failures; a full or read-only cache
        raise unavailable("cannot export the ONNX graph TensorRT builds from", exc) from None
    return TensorRTRunner(onnx_path, Path(cache_dir) / "tensorrt", device, dtype, batch_tokens, options.max_length)


__all__ = ["PRECISIONS", "TensorRTRunner", "default_buckets", "native_engine", "open_tensorrt"]
