"""`--backend auto` / `--dtype auto` on the CPU by measurement: which pairs are tried, what the
cache key covers, that unfaithful pairs are left out, and the CLI's first and later runs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from ignite import hardware
from ignite.backends import autotune, open_cpu_pair
from ignite.config import ModelOptions
from ignite.models import load_spec
from resumekit import FAST, build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


def _flags(monkeypatch: pytest.MonkeyPatch, flags: set[str]) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(autotune, "cpu_flags", lambda: frozenset(flags))


def test_candidates_follow_the_flags_and_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _flags(monkeypatch, {"avx2", "fma"})
    pairs, notes = autotune.candidates("auto", "auto")
    assert pairs == [("openvino", "fp32"), ("onnxruntime", "fp32")] and "no native bf16" in notes[0]
    assert autotune.candidates("openvino", "auto")[0] == [("openvino", "fp32")]
    assert autotune.candidates("auto", "bf16")[0] == [("openvino", "bf16"), ("torch", "bf16")], \
        "an explicit --dtype bf16 is honoured even where bf16 is emulated"
    _flags(monkeypatch, {"avx512_bf16", "avx512f"})
    pairs, notes = autotune.candidates("auto", "auto")
    assert ("openvino", "bf16") in pairs and ("torch", "bf16") in pairs and not notes
    assert autotune.candidates("onnxruntime", "auto")[0] == [("onnxruntime", "fp32")]


def test_cache_key_covers_cpu_flags_model_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"pooling": "mean", "max_length": 128}
    pairs = [("openvino", "fp32"), ("onnxruntime", "fp32")]
    _flags(monkeypatch, {"avx2"})
    base = autotune.cache_key("model-a", options, 2, 2048, pairs)
    assert autotune.cache_key("model-a", options, 2, 2048, pairs) == base
    assert autotune.cache_key("model-b", options, 2, 2048, pairs) != base
    assert autotune.cache_key("model-a", {**options, "max_length": 64}, 2, 2048, pairs) != base
    assert autotune.cache_key("model-a", options, 4, 2048, pairs) != base
    assert autotune.cache_key("model-a", options, 2, 2048, pairs[:1]) != base
    _flags(monkeypatch, {"avx2", "amx_bf16", "amx_tile"})
    assert autotune.cache_key("model-a", options, 2, 2048, pairs) != base


class _Drifting:
    """A real runner whose outputs are bent away from fp32, standing for an unfaithful precision."""

    def __init__(self, runner: object) -> None:
        self.inner, self.name, self.device, self.dtype, self.dim = runner, "drifting", "cpu", "fp32", runner.dim

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = self.inner.run(ids, mask)
        return out + np.roll(out, 1, axis=1)


def test_measure_keeps_the_fastest_faithful_pair(tiny: Path, tmp_path: Path) -> None:
    spec = load_spec(tiny, str(tiny))
    options = ModelOptions(pooling="mean", normalize=True, max_length=128, prefix="", dim=None)
    from ignite.pipeline.tokenize import WindowTokenizer

    tok = WindowTokenizer(spec.tokenizer_path, 128)
    texts = [f"record {i} " + "word " * (i % 37) for i in range(200)]
    batches = autotune.calibration_batches(*tok.encode(texts), tok.pad_id, 2048)
    assert 1 <= len(batches) <= 3 and all(ids.shape == mask.shape for ids, mask in batches)

    def open_pair(backend: str, dtype: str):  # type: ignore[no-untyped-def]
        runner = open_cpu_pair("onnxruntime", "fp32", spec, options, tmp_path, 1, 2048)
        return _Drifting(runner) if backend == "drifting" else runner

    choice, runner = autotune.measure([("onnxruntime", "fp32"), ("drifting", "fp32x")], open_pair, batches)
    assert (choice.backend, choice.dtype) == ("onnxruntime", "fp32") and runner.name == "onnxruntime"
    assert "drifting fp32x left out (cosine" in choice.why and list(choice.texts_per_second) == ["onnxruntime fp32"]
    autotune.store(tmp_path, "k", choice)
    assert autotune.load(tmp_path, "k") == choice and autotune.cached_choices(tmp_path) == [choice]


def test_torch_bf16_is_measured_only_where_openvino_bf16_did_not_run(tiny: Path, tmp_path: Path) -> None:
    spec = load_spec(tiny, str(tiny))
    options = ModelOptions(pooling="mean", normalize=True, max_length=128, prefix="", dim=None)
    from ignite.backends.base import BackendUnavailable
    from ignite.pipeline.tokenize import WindowTokenizer

    tok = WindowTokenizer(spec.tokenizer_path, 128)
    batches = autotune.calibration_batches(*tok.encode([f"record {i}" for i in range(50)]), tok.pad_id, 2048)
    pairs = [("onnxruntime", "fp32"), ("openvino", "bf16"), ("torch", "bf16")]

    def opener(openvino_runs: bool, opened: list[str]):  # type: ignore[no-untyped-def]
        def open_pair(backend: str, dtype: str, streams: int | None = None):  # type: ignore[no-untyped-def]
            opened.append(f"{backend} {dtype}")
            if backend == "openvino" and not openvino_runs:
                raise BackendUnavailable("no native bf16")
            return open_cpu_pair("onnxruntime", "fp32", spec, options, tmp_path, 1, 2048)  # stands for each
        return open_pair

    opened: list[str] = []
    choice, _ = autotune.measure(pairs, opener(True, opened), batches)
    assert "torch bf16" not in opened and "torch bf16 not tried (openvino bf16 ran" in choice.why
    opened = []
    choice, _ = autotune.measure(pairs, opener(False, opened), batches)
    assert "torch bf16" in opened and "torch bf16" in choice.texts_per_second


def test_openvino_stream_counts_are_measured_too(tiny: Path, tmp_path: Path) -> None:
    """The OpenVINO winner is timed at the other stream counts its threads allow; the choice
    names the count, and the runner opened for it runs that many batches at once."""
    spec = load_spec(tiny, str(tiny))
    options = ModelOptions(pooling="mean", normalize=True, max_length=128, prefix="", dim=None)
    from ignite.pipeline.tokenize import WindowTokenizer

    tok = WindowTokenizer(spec.tokenizer_path, 128)
    batches = autotune.calibration_batches(*tok.encode([f"record {i} " + "word " * (i % 37) for i in range(200)]),
                                           tok.pad_id, 2048)
    opened: list[int | None] = []

    def open_pair(backend: str, dtype: str, streams: int | None = None):  # type: ignore[no-untyped-def]
        opened.append(streams)
        return open_cpu_pair(backend, dtype, spec, options, tmp_path, 2, 2048, streams)

    choice, runner = autotune.measure([("openvino", "fp32")], open_pair, batches, threads=2)
    assert opened[0] is None and len(opened) == 2 and opened[1] in (1, 2), opened
    assert len(choice.texts_per_second) == 2 and choice.streams in (None, opened[1])
    assert choice.why.startswith("openvino fp32") and "stream" in choice.why
    if choice.streams is not None:
        assert runner.slots == choice.streams
    autotune.store(tmp_path, "k", choice)
    assert autotune.load(tmp_path, "k") == choice
    assert autotune.stream_options(1, 1) == [] and autotune.stream_options(16, 4) == [1, 2]


def test_cli_measures_once_then_reuses(tiny: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"record {i} " + "word " * (i % 20)}) + "\n" for i in range(300)))
    cache = tmp_path / "cache"
    args = ["embed", "--input", src, "--model", tiny, "--threads", "1", "--quiet", "--overwrite"]
    first = run_cli(*args, "--output", tmp_path / "a.npy", cache_dir=cache)
    assert first.returncode == 0 and "auto: " in first.stderr and "measured in" in first.stderr, first.stderr
    again = run_cli(*args, "--output", tmp_path / "b.npy", cache_dir=cache)
    assert again.returncode == 0 and "as measured before on this machine" in again.stderr, again.stderr
    assert np.allclose(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"), atol=1e-5)
    explicit = run_cli(*args[:-1], *FAST, "--overwrite", "--output", tmp_path / "c.npy", cache_dir=cache)
    assert explicit.returncode == 0 and "auto: " not in explicit.stderr, explicit.stderr
    doctor = run_cli("doctor", cache_dir=cache)
    assert "measured on this CPU" in doctor.stdout, doctor.stdout
