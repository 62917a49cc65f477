"""The precision is in the exported ONNX (what TensorRT 11's strongly typed networks build from):
an fp16 or bf16 export computes its matrix products in that type, keeps int32 inputs and a float32
pooled output, and the fp16 graph, run by ONNX Runtime on the CPU, matches the fp32 graph on real
passages (every row cosine >= 0.999)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ignite.config import ModelOptions
from ignite.models import load_spec
from ignite.models.export import export_onnx
from ignite.pipeline.encode import embed_texts
from ignite.pipeline.tokenize import WindowTokenizer

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ELEM = {"fp32": onnx.TensorProto.FLOAT, "fp16": onnx.TensorProto.FLOAT16, "bf16": onnx.TensorProto.BFLOAT16}


class _OrtGraph:
    """Just enough of a Runner to feed embed_texts from one ONNX file."""

    def __init__(self, path: Path) -> None:
        self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.dim = int(self._session.get_outputs()[0].shape[1])

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]


@pytest.fixture(scope="module")
def exports(model_dir: Path, cache_dir: Path) -> tuple[WindowTokenizer, dict[str, Path]]:
    spec = load_spec(model_dir, "all-MiniLM-L6-v2")
    options = ModelOptions(pooling=spec.pooling, normalize=spec.normalize, max_length=256, prefix="", dim=None)
    tokenizer = WindowTokenizer(spec.tokenizer_path, options.max_length)
    return tokenizer, {dtype: export_onnx(spec, options, cache_dir, dtype) for dtype in ("fp32", "fp16", "bf16")}


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_matmuls_compute_in_the_export_precision(exports: tuple, dtype: str) -> None:
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(exports[1][dtype]))).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    products = [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    assert len(products) >= 6 * 6  # six layers: q, k, v, attention out, two feed-forward, plus scores
    for node in products:
        assert [types.get(name) for name in node.input[:2]] == [ELEM[dtype]] * 2, node.name
    assert [types[i.name] for i in graph.input] == [onnx.TensorProto.INT32] * 2
    assert types[graph.output[0].name] == onnx.TensorProto.FLOAT


def test_fp16_graph_matches_fp32_on_real_passages(exports: tuple, passages_2k: tuple) -> None:
    tokenizer, paths = exports
    texts = [r["text"] for r in passages_2k[1][:300]]
    ref = embed_texts(texts, tokenizer, _OrtGraph(paths["fp32"]), 8192)
    half = embed_texts(texts, tokenizer, _OrtGraph(paths["fp16"]), 8192)
    cosine = (ref * half).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(half, axis=1)
    assert cosine.min() >= 0.999, f"worst row cosine {cosine.min():.5f}"


def test_unknown_precision_is_refused(model_dir: Path, cache_dir: Path) -> None:
    spec = load_spec(model_dir, "all-MiniLM-L6-v2")
    options = ModelOptions(pooling=spec.pooling, normalize=spec.normalize, max_length=256, prefix="", dim=None)
    with pytest.raises(ValueError, match="not int8"):
        export_onnx(spec, options, cache_dir, "int8")
