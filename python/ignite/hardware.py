"""What this machine can do: CPU matrix features and GPUs, without importing heavy frameworks
unless asked."""
from __future__ import annotations

import functools
import os


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


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


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
    import torch

    count = torch.cuda.device_count()
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
