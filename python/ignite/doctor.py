"""`ignite doctor`: what this machine offers Ignite, as a table."""
from __future__ import annotations

import importlib
import platform

from ignite.hardware import cpu_has_amx, cpu_has_native_bf16, gpu_report, usable_cores


def _version(module: str) -> str:
    try:
        return str(getattr(importlib.import_module(module), "__version__", "installed"))
    except ImportError:
        return "not installed"


def rows() -> list[tuple[str, str]]:
    from ignite.backends import resolve_dtype

    out = [("python", platform.python_version()), ("cpu cores (usable)", str(usable_cores())),
           ("cpu AMX", "yes" if cpu_has_amx() else "no"),
           ("cpu native bf16 (AMX or AVX-512 BF16)", "yes" if cpu_has_native_bf16() else "no")]
    try:
        from ignite import _engine

        info = _engine.build_info()
        out.append(("native module", f"ignite._engine {info.get('version', '')} "
                                     f"(CUDA {'yes' if info.get('cuda') else 'no'}, "
                                     f"TensorRT {'yes' if info.get('tensorrt') else 'no'}, "
                                     f"native reader {'yes' if info.get('reader') else 'no'}, "
                                     f"image decoders {'yes' if info.get('image') else 'no'})"))
    except ImportError as exc:
        out.append(("native module", f"missing ({exc}); reinstall with `pip install .`"))
    report = gpu_report()
    gpu = bool(report.gpus)
    out.append(("torch", _version("torch")))
    for g in report.gpus:
        out.append((f"gpu {g.index}", f"{g.name}, {g.total_memory / 2**30:.0f} GiB, sm_{g.sm[0]}{g.sm[1]}"))
    out.append(("gpus found by", report.source + (f": {report.note}" if report.note else "")))
    out.append(("tensorrt", _version("tensorrt")))
    try:
        import onnxruntime

        out.append(("onnxruntime", f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"))
    except ImportError:
        out.append(("onnxruntime", "not installed"))
    try:
        import openvino

        out.append(("openvino", f"{openvino.__version__} ({', '.join(openvino.Core().available_devices)})"))
        has_openvino = True
    except ImportError:
        out.append(("openvino", "not installed"))
        has_openvino = False
    out.append(("faiss", _version("faiss")))
    dtype = resolve_dtype("auto", gpu)
    if gpu:
        backend = "torch (cuda)"
    elif has_openvino:
        backend = "openvino (cpu)"
    else:
        backend = "torch (cpu)" if dtype != "fp32" else "onnxruntime (cpu)"
    why = "native bf16 on this CPU" if dtype == "bf16" and not gpu else ("GPU" if gpu else "no native bf16 here")
    out.append(("--backend auto", f"{backend}; --dtype auto = {dtype} ({why}) until measured"))
    from ignite.backends.autotune import cached_choices
    from ignite.config import default_cache_dir

    for choice in cached_choices(default_cache_dir()):
        out.append(("measured on this CPU", f"{choice.label}: {choice.why}"))
    return out


def doctor() -> int:
    table = rows()
    width = max(len(k) for k, _ in table)
    for key, value in table:
        print(f"{key:<{width}}  {value}")
    return 0
