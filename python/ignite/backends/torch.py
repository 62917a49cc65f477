"""torch backend: the same PooledEncoder as the ONNX export, in bf16/fp16/fp32, on CUDA or on a
CPU whose matrix units multiply bf16 natively (oneDNN: AMX or AVX-512 BF16).

On CUDA each padded sequence length (the batcher rounds lengths up to `pad_multiple`) gets one
fixed shape, rows = batch_tokens // length, captured once as a CUDA graph: a replay launches the
whole model at once, so small batches are not bound by Python's kernel-launch rate."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ignite.backends.base import BackendUnavailable, Capabilities
from ignite.models.spec import ModelSpec

log = logging.getLogger(__name__)

_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class _Graph:
    """One captured forward pass at a fixed (rows, length) with static input/output tensors."""

    def __init__(self, torch: Any, encoder: Any, rows: int, length: int, device: str) -> None:
        self.ids = torch.zeros((rows, length), dtype=torch.int32, device=device)
        self.mask = torch.zeros((rows, length), dtype=torch.int32, device=device)
        self.mask[:, 0] = 1  # padding rows see one token, never an all-masked softmax
        stream = torch.cuda.Stream(device=device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(2):  # warm-up: lazy initialisation must not happen inside capture
                encoder(self.ids, self.mask)
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.out = encoder(self.ids, self.mask)

    def run(self, ids: Any, mask: Any) -> Any:
        rows, length = ids.shape
        self.ids[:rows, :length].copy_(ids, non_blocking=True)
        self.mask[:rows, :length].copy_(mask, non_blocking=True)
        self.ids[rows:].zero_()
        self.mask[rows:].zero_()
        self.mask[rows:, 0] = 1
        self.graph.replay()
        return self.out[:rows]


class TorchRunner:
    name = "torch"

    def __init__(self, spec: ModelSpec, pooling: str, normalize: bool, dim: int | None,
                 device: str, dtype: str, threads: int, batch_tokens: int = 65536, cuda_graphs: bool = True) -> None:
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailable(f"torch is not installed ({exc})") from None
        from ignite.models.encoder import build_encoder

        if dtype not in _TORCH_DTYPES:
            raise BackendUnavailable(f"the torch backend runs fp32, bf16 or fp16, not {dtype}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("torch sees no CUDA device")
        if device == "cpu":
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = device
        self.dtype = dtype
        self.batch_tokens = batch_tokens
        encoder = build_encoder(spec, pooling, normalize, dim, attn="sdpa")
        self._encoder = encoder.to(device=device, dtype=getattr(torch, _TORCH_DTYPES[dtype]))
        self.dim = int(dim or spec.hidden_size)
        # On CUDA each padded width is a captured graph: widths of 8 keep them few.
        self.capabilities = Capabilities(pad_multiple=8 if device.startswith("cuda") else 1)
        self._graphs: dict[int, _Graph] | None = {} if device.startswith("cuda") and cuda_graphs else None
        if device.startswith("cuda"):
            # Fail at start-up, not mid-run, when a full-size batch does not fit (TEI's warm-up).
            length = min(spec.max_length, 512)
            rows = max(1, batch_tokens // length)
            self.run(np.ones((rows, length), np.int32), np.ones((rows, length), np.int32))

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids)
            mask = torch.from_numpy(attention_mask)
            if self._graphs is None:
                out = self._encoder(ids.to(self.device), mask.to(self.device))
            else:
                out = self._graph_for(ids.shape).run(ids.pin_memory().to(self.device, non_blocking=True),
                                                    mask.pin_memory().to(self.device, non_blocking=True))
            return out.float().cpu().numpy()

    def _graph_for(self, shape: tuple[int, int]) -> _Graph:
        assert self._graphs is not None
        rows, length = shape
        graph = self._graphs.get(length)
        if graph is None or graph.ids.shape[0] < rows:
            capacity = max(rows, self.batch_tokens // length)
            log.debug("capturing CUDA graph for %d x %d", capacity, length)
            graph = _Graph(self._torch, self._encoder, capacity, length, self.device)
            self._graphs[length] = graph
        return graph
