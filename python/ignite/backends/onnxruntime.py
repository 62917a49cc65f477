"""CPU backend: the exported ONNX graph (pooling and normalisation inside) on ONNX Runtime, in fp32."""
from __future__ import annotations

import numpy as np

from ignite.backends.base import BackendUnavailable


class OnnxRuntimeRunner:
    name = "onnxruntime"
    device = "cpu"

    def __init__(self, onnx_path: str, threads: int, dtype: str) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from None
        if dtype != "fp32":
            raise BackendUnavailable(f"onnxruntime runs fp32 here, not {dtype} (int8: --backend openvino)")
        self.dtype = dtype
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.dim = int(self._session.get_outputs()[0].shape[1] or 0) or self._probe_dim()

    def _probe_dim(self) -> int:
        first = self._session.get_inputs()[0]
        if first.name == "pixel_values":  # a vision tower: [batch, 3, H, W], H and W fixed
            return int(self.run_images(np.zeros((1, *first.shape[1:]), np.float32)).shape[1])
        one = np.ones((1, 2), dtype=np.int32)
        return int(self.run(one, one).shape[1])

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def run_images(self, pixel_values: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"pixel_values": pixel_values})[0]
