"""torch backend: the same PooledEncoder as the ONNX export, in bf16/fp16/fp32, on CUDA or on a
CPU whose matrix units multiply bf16 natively (oneDNN: AMX or AVX-512 BF16).

On CUDA the forward pass at each padded width the batcher makes (multiples of GPU_PAD_MULTIPLE up
to the run's max length) is captured as a CUDA graph at start-up (torch_cuda.CudaExecutor): a
replay launches the whole model at once, so small batches are not bound by Python's kernel-launch
rate. Two worker threads share a GPU (`slots`), so one's copies and host work overlap the other's
compute."""
from __future__ import annotations

import logging

import numpy as np

from ignite.backends.base import GPU_PAD_MULTIPLE, MAX_ROWS, BackendUnavailable, Capabilities
from ignite.models.spec import ModelSpec

log = logging.getLogger(__name__)

_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
CUDA_SLOTS = 2


class TorchRunner:
    name = "torch"

    def __init__(self, spec: ModelSpec, pooling: str, normalize: bool, dim: int | None,
                 device: str, dtype: str, threads: int, batch_tokens: int = 65536, cuda_graphs: bool = True,
                 max_length: int | None = None, tower: str = "text") -> None:
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
        encoder = build_encoder(spec, pooling, normalize, dim, attn="sdpa", tower=tower)
        self._encoder = encoder.to(device=device, dtype=getattr(torch, _TORCH_DTYPES[dtype]))
        self.dim = int(dim or spec.hidden_size)
        self._cuda = None
        # CUDA graphs are captured per token width; a vision tower has one input shape and runs as is.
        if device.startswith("cuda") and tower == "text":
            from ignite.backends.torch_cuda import CudaExecutor, graph_widths

            self.slots = CUDA_SLOTS
            widths = graph_widths(max_length or spec.max_length, GPU_PAD_MULTIPLE)
            try:
                self._cuda = CudaExecutor(torch, self._encoder, device, self.dim, widths, batch_tokens, MAX_ROWS,
                                          graphs=cuda_graphs)
            except torch.cuda.OutOfMemoryError as exc:
                raise BackendUnavailable(f"{device} has too little free memory for batches of {batch_tokens} "
                                         f"tokens ({' '.join(str(exc).split())[:200]}); lower --batch-tokens") from None
            except RuntimeError as exc:  # a CUDA error, or a model whose forward pass cannot be captured
                raise BackendUnavailable(f"torch cannot run this model on {device}: "
                                         f"{' '.join(str(exc).split())[:300]}") from None
        # On CUDA every padded width up to the max length is a captured graph, two slots a device.
        on_gpu = self._cuda is not None
        self.capabilities = Capabilities(max_length=int(max_length or spec.max_length) if on_gpu else 0,
                                         pad_multiple=GPU_PAD_MULTIPLE if on_gpu else 1,
                                         slots=CUDA_SLOTS if on_gpu else 1)

    @property
    def graph_widths(self) -> list[int]:
        """Widths captured as CUDA graphs; empty on the CPU or with graphs off."""
        return self._cuda.graph_widths if self._cuda is not None else []

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        if self._cuda is not None:
            return self._cuda.run(input_ids, attention_mask)
        torch = self._torch
        with torch.inference_mode():
            out = self._encoder(torch.from_numpy(input_ids), torch.from_numpy(attention_mask))
            return out.float().numpy()

    def run_images(self, pixel_values: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self._encoder(torch.from_numpy(pixel_values).to(self.device, non_blocking=True))
            return out.float().cpu().numpy()
