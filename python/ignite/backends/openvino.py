"""CPU backend: the exported ONNX graph compiled by OpenVINO, in bf16 where the CPU multiplies
bf16 natively (AMX, AVX-512 BF16) and fp32 elsewhere. Chosen for CPUs by measurement: on the
2-core AVX-512 BF16 machines here it runs all-MiniLM-L6-v2 about 1.9x faster than torch bf16 and
1.3x faster than ONNX Runtime fp32 (benchmarks/results/)."""
from __future__ import annotations

import queue

import numpy as np

from ignite.backends.base import BackendUnavailable, Capabilities
from ignite.hardware import openvino_has_native_bf16

# int8: a graph NNCF quantized or compressed (models/quantize.py); what it left unquantized runs in
# the precision measured for it there (f32 unless given).
_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
MAX_STREAMS = 4  # batches in flight at once, each holding its buffers
# OpenVINO builds its int8 kernels per input shape, ~20 ms each on the first batch of a shape; widths
# padded to 8 cut 3,000 passages' shapes from 84 to 21 and ran them 1.3x faster cold (warm: 1.04x)
# for 5% more tokens. bf16 and fp32 build theirs quicker, and lose the 5% (benchmarks/results/).
INT8_PAD_MULTIPLE = 8


class OpenVinoRunner:
    name = "openvino"
    device = "cpu"

    def __init__(self, model_path: str, threads: int, dtype: str, streams: int | None = None,
                 precision: str | None = None, dynamic_group: int | None = None) -> None:
        """`model_path`: the exported ONNX graph, or for int8 the quantized OpenVINO IR (.xml);
        `streams`: batches run at once, the threads split between them (None: OpenVINO's
        throughput heuristic; --backend auto measures the alternatives); `precision`: OpenVINO's
        inference precision, where not the dtype's own (int8's unquantized layers); `dynamic_group`:
        values a scale where OpenVINO quantizes activations as it runs (int8 weights only)."""
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendUnavailable(f"openvino is not installed ({exc}); pip install openvino") from None
        if dtype not in _PRECISION:
            raise BackendUnavailable(f"openvino runs fp32, bf16, fp16 or int8, not {dtype}")
        core = ov.Core()
        if dtype == "bf16" and not openvino_has_native_bf16(core):
            raise BackendUnavailable("this CPU has no native bf16 for OpenVINO")
        self.dtype = dtype
        # Throughput mode: OpenVINO splits the threads into streams, each running its own batch.
        # The pipeline gives each stream a worker thread (`slots`); on 2 cores two one-thread
        # streams beat one two-thread stream by ~6% whole-process (small batches scale poorly
        # across threads).
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision or _PRECISION[dtype], "INFERENCE_NUM_THREADS": threads}
        if dynamic_group is not None:
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = dynamic_group
        if streams is None:
            config["PERFORMANCE_HINT"] = "THROUGHPUT"
        else:
            config["NUM_STREAMS"] = max(1, min(MAX_STREAMS, streams))
        self._model = core.compile_model(model_path, "CPU", config)
        self.slots = max(1, min(MAX_STREAMS, int(self._model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))))
        self.capabilities = Capabilities(slots=self.slots, pad_multiple=INT8_PAD_MULTIPLE if dtype == "int8" else 1)
        self._requests: queue.SimpleQueue = queue.SimpleQueue()  # one idle request per free slot
        for _ in range(self.slots):
            self._requests.put(self._model.create_infer_request())
        first = self._model.inputs[0]
        if "pixel_values" in first.get_names():  # a vision tower: [batch, 3, H, W], H and W fixed
            shape = [d.get_length() for d in list(first.get_partial_shape())[1:]]
            self.dim = int(self.run_images(np.zeros((1, *shape), np.float32)).shape[1])
        else:
            one = np.ones((1, 2), dtype=np.int32)
            self.dim = int(self.run(one, one).shape[1])

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self._infer({"input_ids": input_ids, "attention_mask": attention_mask})

    def run_images(self, pixel_values: np.ndarray) -> np.ndarray:
        return self._infer({"pixel_values": pixel_values})

    def _infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        request = self._requests.get()
        try:
            result = request.infer(inputs)
            return np.array(result[0], dtype=np.float32, copy=True)
        finally:
            self._requests.put(request)
