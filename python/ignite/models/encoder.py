"""The model as Ignite runs it: transformer, pooling, optional Matryoshka truncation and L2
normalisation in one torch module, so only pooled vectors leave the device. The ONNX export and
the torch backend both use it, so every backend computes the same function."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ignite.models.spec import ModelSpec


class PooledEncoder(nn.Module):
    def __init__(self, transformer: nn.Module, pooling: str, normalize: bool, dim: int | None) -> None:
        super().__init__()
        self.transformer = transformer
        self.pooling = pooling
        self.normalize = normalize
        self.dim = dim

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # int32 in (what the batcher fills and TensorRT prefers); embedding tables index in int64.
        ids = input_ids.long()
        mask = attention_mask.long()
        # Pooling in float32 whatever the transformer's precision: a masked sum over 512 tokens
        # loses digits in bf16 and can overflow in fp16.
        hidden = self.transformer(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        maskf = mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = hidden.masked_fill(maskf == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
        elif self.pooling == "lasttoken":
            last = mask.sum(dim=1) - 1
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        else:
            summed = (hidden * maskf).sum(dim=1)
            counts = maskf.sum(dim=1).clamp(min=1e-9)
            pooled = summed / (counts.sqrt() if self.pooling == "mean_sqrt_len" else counts)
        if self.dim is not None:
            pooled = pooled[:, : self.dim]
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=1)
        return pooled


def load_transformer(path: Path, attn: str = "eager") -> nn.Module:
    from transformers import AutoModel

    # Quiet: transformers logs a weight-loading table and warnings on every load.
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(path), attn_implementation=attn, trust_remote_code=False)
    return model.eval()


def build_encoder(spec: ModelSpec, pooling: str, normalize: bool, dim: int | None, attn: str = "eager",
                  tower: str = "text") -> nn.Module:
    """The model's encoder; for a CLIP model, the tower `tower` with its projection."""
    if spec.is_clip:
        from ignite.models.clip import build_clip_encoder

        return build_clip_encoder(spec.path, tower, normalize, dim, attn)
    return PooledEncoder(load_transformer(spec.path, attn), pooling, normalize, dim).eval()
