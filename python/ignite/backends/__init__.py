"""Backends behind one interface (base.Runner), chosen in a fixed order by `--backend auto`."""
from __future__ import annotations

import logging
import os

from ignite.backends.base import BackendUnavailable, Runner
from ignite.config import ModelOptions
from ignite.errors import UsageError
from ignite.hardware import cpu_has_native_bf16, cuda_available
from ignite.models.spec import ModelSpec

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "torch", "openvino", "onnxruntime")
DTYPES = ("auto", "fp32", "bf16", "fp16", "int8")


def resolve_dtype(dtype: str, on_gpu: bool) -> str:
    if dtype != "auto":
        return dtype
    if on_gpu or cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def open_backend(backend: str, dtype: str, spec: ModelSpec, options: ModelOptions,
                 cache_dir: os.PathLike, threads: int, device: str | None = None, batch_tokens: int = 65536) -> Runner:
    """Open the requested backend, or for `auto` the first that works: tensorrt, torch on CUDA;
    on a CPU openvino, then torch (bf16) or onnxruntime (fp32)."""
    gpu = cuda_available() if device is None else device.startswith("cuda")
    device = device or ("cuda:0" if gpu else "cpu")
    dtype = resolve_dtype(dtype, gpu)
    if backend == "auto":
        order = ["tensorrt", "torch"] if gpu else ["openvino", "torch" if dtype != "fp32" else "onnxruntime"]
    else:
        order = [backend]
    reasons = []
    for name in order:
        try:
            return _open(name, dtype, spec, options, cache_dir, threads, device, batch_tokens)
        except BackendUnavailable as exc:
            reasons.append(f"{name}: {exc}")
            log.info("backend %s unavailable: %s", name, exc)
    raise UsageError("no backend can run here (" + "; ".join(reasons) + "); see `ignite doctor`")


def open_int8(backend: str, spec: ModelSpec, options: ModelOptions, cache_dir: os.PathLike, threads: int,
              calibration: list, held_apart: list, index_only: list) -> tuple[Runner, object]:
    """The int8 model on OpenVINO (the faster faithful of NNCF static quantization, calibrated on
    `calibration` batches of the user's records, and int8 weights with dynamic activations), and
    its Fidelity to fp32 on the `held_apart` batches (queries of an index with `index_only` too)."""
    if backend not in ("auto", "openvino"):
        raise UsageError(f"--dtype int8 runs on --backend openvino (NNCF quantization), not {backend}")
    from pathlib import Path

    from ignite.backends.openvino import OpenVinoRunner
    from ignite.models.quantize import quantized_model

    xml, fidelity = quantized_model(spec, options, Path(cache_dir), calibration, held_apart, threads, index_only)
    return OpenVinoRunner(str(xml), threads, "int8", precision=fidelity.rest,
                          dynamic_group=fidelity.dynamic_group), fidelity


def open_cpu_pair(backend: str, dtype: str, spec: ModelSpec, options: ModelOptions, cache_dir: os.PathLike,
                  threads: int, batch_tokens: int, streams: int | None = None) -> Runner:
    """One backend/precision pair on the CPU, as --backend auto's measurement tries them;
    `streams` (OpenVINO only): batches at once, None for OpenVINO's own choice."""
    return _open(backend, dtype, spec, options, cache_dir, threads, "cpu", batch_tokens, streams)


def _open(name: str, dtype: str, spec: ModelSpec, options: ModelOptions, cache_dir: os.PathLike,
          threads: int, device: str, batch_tokens: int, streams: int | None = None) -> Runner:
    if name == "tensorrt":
        from ignite.backends.tensorrt import open_tensorrt

        return open_tensorrt(spec, options, cache_dir, device, dtype, batch_tokens)
    if name == "torch":
        from ignite.backends.torch import TorchRunner

        return TorchRunner(spec, options.pooling, options.normalize, options.dim, device, dtype, threads,
                           batch_tokens, max_length=options.max_length, tower=options.tower)
    if name in ("onnxruntime", "openvino") and device != "cpu":
        raise BackendUnavailable(f"{name} runs on the CPU here, not {device}")
    if dtype == "int8":
        raise UsageError("--dtype int8 runs on the CPU with --backend openvino (or auto), calibrated on your records")
    if name in ("onnxruntime", "openvino"):
        from pathlib import Path

        from ignite.models.export import export_onnx

        onnx_path = export_onnx(spec, options, Path(cache_dir))
        if name == "openvino":
            from ignite.backends.openvino import OpenVinoRunner

            return OpenVinoRunner(str(onnx_path), threads, dtype, streams)
        from ignite.backends.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(str(onnx_path), threads, dtype)
    raise UsageError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "DTYPES", "BackendUnavailable", "Runner", "open_backend", "open_cpu_pair", "open_int8",
           "resolve_dtype"]
