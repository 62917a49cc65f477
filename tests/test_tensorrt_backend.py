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
    fake = types.ModuleType("ignite._engine")

    class EngineError(RuntimeError):
        pass

    fake.EngineError = EngineError  # type: ignore[attr-defined]
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
