"""GPU utilisation and memory from NVML (libnvidia-ml, shipped with the driver), read through
ctypes where it is present; None everywhere else. NVML numbers GPUs as the driver does, so a
CUDA index is mapped through CUDA_VISIBLE_DEVICES (indices or GPU-UUIDs)."""
from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuReading:
    utilization: float  # 0..1
    memory_used: int  # bytes


class _Utilization(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


class _Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    return lib if lib.nvmlInit_v2() == 0 else None


@functools.lru_cache(maxsize=16)
def _handle(device: str) -> ctypes.c_void_p | None:
    lib = _library()
    if lib is None or not device.startswith("cuda"):
        return None
    index = int(device.partition(":")[2] or 0)
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    handle = ctypes.c_void_p()
    if visible and index < len(visible) and not visible[index].isdigit():
        status = lib.nvmlDeviceGetHandleByUUID(visible[index].encode(), ctypes.byref(handle))
    else:
        physical = int(visible[index]) if visible and index < len(visible) else index
        status = lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(physical), ctypes.byref(handle))
    return handle if status == 0 else None


def query(device: str) -> GpuReading | None:
    """`device` as the runners name it ("cuda:1"); None without NVML or on any NVML error."""
    lib, handle = _library(), _handle(device)
    if lib is None or handle is None:
        return None
    util, mem = _Utilization(), _Memory()
    if lib.nvmlDeviceGetUtilizationRates(handle, ctypes.byref(util)) != 0:
        return None
    if lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem)) != 0:
        return None
    return GpuReading(utilization=util.gpu / 100.0, memory_used=int(mem.used))
