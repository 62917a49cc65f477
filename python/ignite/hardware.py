"""What this machine can do: CPU matrix features and GPUs, without importing heavy frameworks
unless asked."""
from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cpu_has_amx() -> bool:
    return {"amx_bf16", "amx_tile"} <= cpu_flags()


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (AMX tiles or AVX-512 BF16 dot products)."""
    return cpu_has_amx() or "avx512_bf16" in cpu_flags()


def openvino_has_native_bf16(core: object) -> bool:
    """OpenVINO's own view (an `openvino.Core`) of whether its CPU plugin runs bf16 natively."""
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Gpu:
    index: int  # among the GPUs this process sees (after CUDA_VISIBLE_DEVICES)
    name: str
    total_memory: int  # bytes
    sm: tuple[int, int]


@dataclass(frozen=True)
class GpuReport:
    gpus: tuple[Gpu, ...]
    source: str  # who was asked: "CUDA driver <version> (ignite._engine)" or "torch <version>"
    note: str = ""  # why there are none, when there are none


@functools.lru_cache(maxsize=1)
def gpu_report() -> GpuReport:
    """The GPUs this process sees. The native module asks the CUDA driver directly (no torch
    import, no CUDA context), so a TensorRT install without a CUDA build of torch finds its GPUs;
    torch is asked only when the native module is missing or predates the probe."""
    try:
        from ignite import _engine

        probe = _engine.cuda_devices
    except (ImportError, AttributeError) as exc:
        log.debug("native GPU probe unavailable (%s); asking torch", exc)
        return _torch_report()
    try:
        found = probe()
    except _engine.EngineError as exc:  # an installed driver that fails: say so, use no GPU
        log.warning("no GPU used: %s", exc)
        return GpuReport((), "CUDA driver (ignite._engine)", str(exc))
    version = found["driver_version"]
    source = f"CUDA driver {version // 1000}.{version % 1000 // 10} (ignite._engine)" if version else "ignite._engine"
    gpus = tuple(Gpu(d["index"], d["name"], int(d["total_memory"]), tuple(d["sm"])) for d in found["devices"])
    return GpuReport(gpus, source, found["note"])


def _torch_report() -> GpuReport:
    try:
        import torch
    except ImportError:
        return GpuReport((), "none", "neither ignite._engine nor torch can be loaded to look for GPUs")
    if not torch.cuda.is_available():
        return GpuReport((), f"torch {torch.__version__}", "torch sees no CUDA device")
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append(Gpu(i, p.name, int(p.total_memory), (p.major, p.minor)))
    return GpuReport(tuple(gpus), f"torch {torch.__version__}")


def cuda_available() -> bool:
    return bool(gpu_report().gpus)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def select_gpus(spec: str) -> list[str]:
    """`--gpus all|none|0,2` to torch device names. Indices count the GPUs this process sees, so
    CUDA_VISIBLE_DEVICES applies first, as with every CUDA program."""
    from ignite.errors import UsageError

    spec = spec.strip().lower()
    if spec == "none" or not cuda_available():
        if spec not in ("none", "all"):
            raise UsageError(f"--gpus {spec}: no usable GPU here (see `ignite doctor`); use --gpus none")
        return []
    count = len(gpu_report().gpus)
    if spec == "all":
        return [f"cuda:{i}" for i in range(count)]
    try:
        picked = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--gpus {spec!r}: give all, none, or comma-separated indices like 0,2") from None
    bad = [i for i in picked if not 0 <= i < count]
    if bad:
        raise UsageError(f"--gpus {spec}: GPU {bad[0]} does not exist; this process sees {count} (0..{count - 1})")
    return [f"cuda:{i}" for i in dict.fromkeys(picked)]
