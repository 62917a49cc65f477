"""The tensorrt backend's own logic, on any machine: it says why it cannot run (no TensorRT in
this build, no GPU, a CPU device, an unsupported dtype) as BackendUnavailable, so `--backend auto`
moves on with the reason, and its default sequence buckets cover the model's max length."""
from __future__ import annotations

import sys
import types

import pytest

import ignite
from ignite.backends.base import BackendUnavailable
from ignite.backends.tensorrt import TensorRTRunner, cuda_index, default_buckets, native_engine


def _fake_engine(monkeypatch: pytest.MonkeyPatch, **attrs: object) -> types.ModuleType:
    """A stand-in for ignite._engine with the real module's error classes (the same hierarchy)."""
    fake = types.ModuleType("ignite._engine")

    class EngineError(RuntimeError):
        pass

    fake.EngineError = EngineError  # type: ignore[attr-defined]
    fake.InvalidArgument = type("InvalidArgument", (EngineError, ValueError), {})  # type: ignore[attr-defined]
    fake.NotFound = type("NotFound", (EngineError, FileNotFoundError), {})  # type: ignore[attr-defined]
    fake.IoError = type("IoError", (EngineError, OSError), {})  # type: ignore[attr-defined]
    fake.Cancelled = type("Cancelled", (EngineError,), {})  # type: ignore[attr-defined]
    fake.CudaError = type("CudaError", (EngineError,), {})  # type: ignore[attr-defined]
    fake.TensorRTError = type("TensorRTError", (EngineError,), {})  # type: ignore[attr-defined]
    for name, value in attrs.items():
        setattr(fake, name, value)
    monkeypatch.setitem(sys.modules, "ignite._engine", fake)
    monkeypatch.setattr(ignite, "_engine", fake, raising=False)
    return fake


def test_build_without_tensorrt_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_engine(monkeypatch)
    with pytest.raises(BackendUnavailable, match="no TensorRT.*TENSORRT_ROOT"):
        native_engine()
    with pytest.raises(BackendUnavailable, match="no TensorRT"):
        TensorRTRunner("model.onnx", "cache")


def test_real_module_without_tensorrt_is_unavailable() -> None:
    from ignite import _engine

    if hasattr(_engine, "TrtSession"):
        pytest.skip("this build has TensorRT")
    assert _engine.build_info()["tensorrt"] is False
    with pytest.raises(BackendUnavailable, match="no TensorRT"):
        TensorRTRunner("model.onnx", "cache")


def test_no_gpu_or_broken_driver_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_engine(monkeypatch, TrtSession=object, cuda_device_count=lambda: 0)
    with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
        TensorRTRunner("model.onnx", "cache", device="cuda:0")

    def broken() -> int:
        raise fake.EngineError("CUDA error cudaErrorInsufficientDriver (35): driver too old")

    fake.cuda_device_count = broken  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match="InsufficientDriver"):
        TensorRTRunner("model.onnx", "cache", device="cuda:0")
    fake.cuda_device_count = lambda: 2  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match="sees 2 GPU"):
        TensorRTRunner("model.onnx", "cache", device="cuda:3")


def test_device_and_dtype_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_engine(monkeypatch, TrtSession=object, cuda_device_count=lambda: 1)
    with pytest.raises(BackendUnavailable, match="CUDA GPU, not 'cpu'"):
        TensorRTRunner("model.onnx", "cache", device="cpu")
    with pytest.raises(BackendUnavailable, match="not int8"):
        TensorRTRunner("model.onnx", "cache", device="cuda:0", dtype="int8")
    assert cuda_index("cuda") == 0 and cuda_index("cuda:3") == 3


@pytest.mark.parametrize("max_length", [8, 32, 128, 256, 512, 514])
def test_default_buckets_end_at_max_length(max_length: int) -> None:
    buckets = default_buckets(max_length)
    assert buckets[-1] == max_length
    assert buckets == sorted(set(buckets))


def _failing_session(error: BaseException) -> type:
    class Session:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise error

    return Session


@pytest.mark.parametrize("kind, message", [
    ("InvalidArgument", "model.onnx computes in fp32 but fp16 was asked for"),
    ("NotFound", "no such file: model.onnx"),
    ("IoError", "cannot write the engine cache:\nread-only file system"),
    ("CudaError", "CUDA error cudaErrorMemoryAllocation (2): out of memory"),
    ("TensorRTError", "TensorRT's ONNX parser cannot read model.onnx: unsupported op"),
    ("EngineError", "something else the engine refused"),
])
def test_every_session_failure_is_one_line_unavailable(monkeypatch: pytest.MonkeyPatch, kind: str,
                                                       message: str) -> None:
    fake = _fake_engine(monkeypatch, cuda_device_count=lambda: 1)
    fake.TrtSession = _failing_session(getattr(fake, kind)(message))  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable) as caught:
        TensorRTRunner("model.onnx", "cache", device="cuda:0", dtype="fp16")
    text = str(caught.value)
    assert "\n" not in text and kind in text and " ".join(message.split()) in text


def test_warm_up_failure_is_unavailable_and_cancel_goes_up(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_engine(monkeypatch, cuda_device_count=lambda: 1)

    class OutOfMemoryAtWarmUp:
        profiles = [(1, 32, 64, 64)]
        slots = 2

        def __init__(self, *args: object, **kwargs: object) -> None:
            assert kwargs["strongly_typed"] is True  # the precision comes from the ONNX on TensorRT 10 too

        def submit(self, ids: object, mask: object) -> int:
            raise fake.CudaError("CUDA error cudaErrorMemoryAllocation (2): out of memory")

    fake.TrtSession = OutOfMemoryAtWarmUp  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match="out of memory"):
        TensorRTRunner("model.onnx", "cache", device="cuda:0", dtype="bf16")
    fake.TrtSession = _failing_session(fake.Cancelled("TensorRT engine build cancelled"))  # type: ignore[attr-defined]
    with pytest.raises(fake.Cancelled):
        TensorRTRunner("model.onnx", "cache", device="cuda:0")


def test_auto_moves_on_past_a_failing_tensorrt(monkeypatch: pytest.MonkeyPatch, model_dir: object,
                                               tmp_path: object) -> None:
    """--backend auto on a GPU: TensorRT fails to open, torch is tried next (and here, with no
    CUDA, fails too); the user gets one line with both reasons, not a traceback."""
    from pathlib import Path

    import ignite.models.export
    from ignite.backends import open_backend
    from ignite.config import ModelOptions
    from ignite.errors import UsageError
    from ignite.models import load_spec

    fake = _fake_engine(monkeypatch, cuda_device_count=lambda: 1)
    fake.TrtSession = _failing_session(fake.NotFound("libnvinfer_builder_resource.so.10 not found"))  # type: ignore[attr-defined]
    monkeypatch.setattr(ignite.models.export, "export_onnx", lambda *a: Path(str(tmp_path)) / "model.onnx")
    spec = load_spec(Path(str(model_dir)), "all-MiniLM-L6-v2")
    options = ModelOptions(pooling="mean", normalize=True, max_length=128, prefix="", dim=None)
    with pytest.raises(UsageError) as caught:
        open_backend("auto", "fp16", spec, options, Path(str(tmp_path)), 1, device="cuda:0")
    text = str(caught.value)
    assert "tensorrt: TensorRT cannot run this model here: NotFound: libnvinfer_builder_resource" in text
    assert "torch:" in text and "\n" not in text


def test_export_failure_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import ignite.models.export
    from ignite.backends.tensorrt import open_tensorrt

    _fake_engine(monkeypatch, TrtSession=object, cuda_device_count=lambda: 1)

    def broken(*args: object) -> None:
        raise RuntimeError("Exporting the operator 'aten::foo' to ONNX opset version 17\nis not supported")

    monkeypatch.setattr(ignite.models.export, "export_onnx", broken)
    options = types.SimpleNamespace(max_length=128, tower="text")
    with pytest.raises(BackendUnavailable, match="cannot export the ONNX graph.*aten::foo.*not supported"):
        open_tensorrt(object(), options, str(tmp_path), "cuda:0", "fp16", 65536)
