"""torch backend: the same PooledEncoder as the ONNX export, in bf16/fp16/fp32, on CUDA or on a
CPU whose matrix units multiply bf16 natively (oneDNN: AMX or AVX-512 BF16)."""
from __future__ import annotations

import numpy as np

from ignite.backends.base import BackendUnavailable
from ignite.models.spec import ModelSpec

_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class TorchRunner:
    name = "torch"

    def __init__(self, spec: ModelSpec, pooling: str, normalize: bool, dim: int | None,
                 device: str, dtype: str, threads: int) -> None:
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
        encoder = build_encoder(spec, pooling, normalize, dim, attn="sdpa")
        self._encoder = encoder.to(device=device, dtype=getattr(torch, _TORCH_DTYPES[dtype]))
        self.dim = int(dim or spec.hidden_size)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
            mask = torch.from_numpy(attention_mask).to(self.device, non_blocking=True)
            return self._encoder(ids, mask).float().cpu().numpy()
