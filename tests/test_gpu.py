"""The GPU path, run by `pytest -m gpu` (benchmarks/gpu_check.sh runs these first on a GPU
machine); every test skips cleanly where torch sees no CUDA device.

- the torch backend in bf16 and fp16, file to file, against sentence-transformers fp32 on 2,000
  real passages: every row cosine >= 0.999;
- CUDA graphs captured at start-up for every padded width up to the run's --max-length, equal
  to the eager forward pass;
- two worker slots on one GPU at once give what one gives;
- a device that fails every batch leaves the run to the other, and nothing is lost;
- SIGKILL mid-run, then --resume: the same outputs as an uninterrupted run.
"""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import cosine_rows, run_cli, shared_file
from resumekit import assert_same_npy_outputs, manifest, start_cli, wait_for_pipeline

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")]

MAX_LENGTH = 256  # all-MiniLM-L6-v2's


@pytest.fixture(scope="module")
def st_fp32(model_dir: Path, passages_2k: tuple[Path, list[dict]]) -> np.ndarray:
    st = pytest.importorskip("sentence_transformers")
    # Explicitly fp32: transformers 5 loads a checkpoint in its stored dtype (fp16 for the carried copy).
    model = st.SentenceTransformer(str(model_dir), device="cuda").float()
    return model.encode([r["text"] for r in passages_2k[1]], batch_size=128, convert_to_numpy=True)


@pytest.fixture(scope="module")
def runner(model_dir: Path, cache_dir: Path):  # type: ignore[no-untyped-def]
    from ignite.backends import open_backend
    from ignite.config import ModelOptions
    from ignite.models import load_spec

    spec = load_spec(model_dir, "all-MiniLM-L6-v2")
    options = ModelOptions(pooling=spec.pooling, normalize=spec.normalize, max_length=MAX_LENGTH, prefix="", dim=None)
    return open_backend("torch", "bf16", spec, options, cache_dir, 1, device="cuda:0")


def _batches(model_dir: Path, texts: list[str], runner) -> list[tuple[np.ndarray, np.ndarray]]:  # type: ignore[no-untyped-def]
    """The padded batches the pipeline would make of `texts`."""
    from ignite.backends.base import GPU_PAD_MULTIPLE
    from ignite.backends.packing import fill_batch, plan_batches
    from ignite.pipeline.tokenize import WindowTokenizer

    tokenizer = WindowTokenizer(model_dir / "tokenizer.json", MAX_LENGTH)
    flat, offsets = tokenizer.encode(texts)
    plan = plan_batches(np.diff(offsets), 16384, GPU_PAD_MULTIPLE, max_width=MAX_LENGTH)
    return [fill_batch(flat, offsets, rows, GPU_PAD_MULTIPLE, tokenizer.pad_id, width=width)
            for rows, width in zip(plan, plan.widths.tolist())]


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_torch_backend_matches_sentence_transformers(tmp_path: Path, cache_dir: Path, passages_2k, st_fp32,
                                                     model_dir: Path, dtype: str) -> None:
    path, records = passages_2k
    out = tmp_path / "emb.npy"
    result = run_cli("embed", "--input", path, "--output", out, "--id-field", "id", "--model", model_dir,
                     "--backend", "torch", "--dtype", dtype, "--gpus", "all", cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    assert f"on torch cuda:0 {dtype}" in result.stderr
    emb = np.load(out)
    assert emb.shape == (len(records), 384)
    cos = cosine_rows(emb, st_fp32)
    assert cos.min() >= 0.999, f"min cosine {cos.min():.6f} at row {int(cos.argmin())}"


def test_cuda_graphs_for_every_width_match_eager(runner, model_dir: Path, passages_2k) -> None:  # type: ignore[no-untyped-def]
    from ignite.backends.torch_cuda import graph_widths
    from ignite.backends.base import GPU_PAD_MULTIPLE

    assert runner.slots == 2
    assert runner.graph_widths == graph_widths(MAX_LENGTH, GPU_PAD_MULTIPLE)
    eager = runner._encoder  # the same weights, run without graphs
    for ids, mask in _batches(model_dir, [r["text"] for r in passages_2k[1][:600]], runner):
        with torch.inference_mode():
            want = eager(torch.from_numpy(ids).cuda(), torch.from_numpy(mask).cuda()).float().cpu().numpy()
        got = runner.run(ids, mask)
        assert cosine_rows(got, want).min() >= 0.9999, ids.shape


def test_two_slots_at_once_equal_one(runner, model_dir: Path, passages_2k) -> None:  # type: ignore[no-untyped-def]
    batches = _batches(model_dir, [r["text"] for r in passages_2k[1]], runner)
    serial = [runner.run(ids, mask) for ids, mask in batches]
    results: list[np.ndarray | None] = [None] * len(batches)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(offset, len(batches), 2):
                results[i] = runner.run(*batches[i])
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, (want, got) in enumerate(zip(serial, results)):
        assert got is not None and cosine_rows(got, want).min() >= 0.99999, i


class _FailingDevice:
    """A GPU that fails every batch, as one with a sticky CUDA error does."""

    name, device, dtype, slots = "torch", "cuda:0", "bf16", 2

    def __init__(self, dim: int) -> None:
        self.dim, self.calls = dim, 0

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")


def test_one_failing_device_leaves_the_run_to_the_other(tmp_path: Path, runner, model_dir: Path,  # type: ignore[no-untyped-def]
                                                        passages_2k, st_fp32) -> None:
    from ignite.config import EmbedConfig, ModelOptions
    from ignite.io.inputs import expand_inputs
    from ignite.io.manifest import WorkDir
    from ignite.backends.base import GPU_PAD_MULTIPLE
    from ignite.pipeline.run import run_pipeline
    from ignite.pipeline.tokenize import WindowTokenizer

    path, records = passages_2k
    out = tmp_path / "emb.npy"
    options = ModelOptions(pooling="mean", normalize=True, max_length=MAX_LENGTH, prefix="", dim=None)
    cfg = EmbedConfig(inputs=(path,), output=out, output_kind="npy", field="text", id_field="id",
                      model_name="all-MiniLM-L6-v2", model_path=model_dir, model=options, backend="torch",
                      dtype="bf16", output_dtype="float32", batch_tokens=16384, window_records=512, shard_rows=10**6,
                      cache_dir=tmp_path, threads=1, quiet=True, overwrite=False, errors_path=None, max_errors=None)
    work = WorkDir(out)
    start = work.create({"format": 1, "inputs": [], "options": {}})
    broken = _FailingDevice(runner.dim)
    stats = run_pipeline(cfg, expand_inputs([str(path)]), [broken, runner],
                         WindowTokenizer(model_dir / "tokenizer.json", MAX_LENGTH), work, start,
                         pad_multiple=GPU_PAD_MULTIPLE)
    assert stats.failed == 0 and stats.records == len(records) and broken.calls >= 3
    assert cosine_rows(np.load(out), st_fp32).min() >= 0.999


def test_sigkill_then_resume_on_the_gpu(tmp_path: Path, cache_dir: Path, model_dir: Path) -> None:
    corpus = shared_file("passages.jsonl.zst")
    args = ["--model", model_dir, "--id-field", "id", "--backend", "torch", "--dtype", "bf16", "--gpus", "all",
            "--window-records", "4096", "--commit-interval", "0", "--quiet"]
    ref = tmp_path / "reference" / "emb.npy"
    ref.parent.mkdir()
    done = run_cli("embed", "--input", corpus, "--output", ref, *args, cache_dir=cache_dir)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "killed" / "emb.npy"
    out.parent.mkdir()
    log = tmp_path / "killed" / "stderr.txt"
    proc = start_cli(["embed", "--input", corpus, "--output", out, *args], cache_dir, log)
    assert wait_for_pipeline(proc, log, timeout=300), log.read_text()
    deadline = time.monotonic() + 120
    while not (manifest(out) or {}).get("rows") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # kill once something is committed, so the resume has work on both sides
    proc.kill()
    assert proc.wait() == -signal.SIGKILL, "the run ended before the kill: " + log.read_text()[-2000:]
    committed = (manifest(out) or {}).get("rows", 0)
    resumed = run_cli("embed", "--input", corpus, "--output", out, *args, "--resume", cache_dir=cache_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_npy_outputs(out, ref)
    print(f"killed after {committed:,} committed rows, resumed to the same outputs")
