"""CLIP in the Hugging Face layout as two encoders: the vision tower with its projection
(pixel_values -> embedding) and the text tower with its projection (input_ids, attention_mask ->
embedding), each L2-normalised inside, so they compute transformers' CLIPModel.get_image_features
and get_text_features (then normalised) and only pooled vectors leave the device."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def _normalised(pooled: torch.Tensor, dim: int | None, normalize: bool) -> torch.Tensor:
    pooled = pooled.float()  # normalised in float32 whatever the towers compute in
    if dim is not None:
        pooled = pooled[:, :dim]
    return nn.functional.normalize(pooled, p=2.0, dim=1) if normalize else pooled


class ClipTextEncoder(nn.Module):
    """get_text_features: the text transformer pools the first end-of-text token (as CLIP's
    config says, or the highest id for old configs), then the text projection."""

    def __init__(self, model: nn.Module, normalize: bool, dim: int | None) -> None:
        super().__init__()
        self.text_model, self.text_projection = model.text_model, model.text_projection
        self.normalize, self.dim = normalize, dim

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.text_model(input_ids=input_ids.long(), attention_mask=attention_mask.long()).pooler_output
        return _normalised(self.text_projection(pooled), self.dim, self.normalize)


class ClipVisionEncoder(nn.Module):
    """get_image_features: the vision transformer's pooled class token, then the visual
    projection. Pixels come in float32 in every precision and are cast here."""

    def __init__(self, model: nn.Module, normalize: bool, dim: int | None) -> None:
        super().__init__()
        self.vision_model, self.visual_projection = model.vision_model, model.visual_projection
        self.normalize, self.dim = normalize, dim

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = self.visual_projection.weight.dtype
        pooled = self.vision_model(pixel_values=pixel_values.to(dtype)).pooler_output
        return _normalised(self.visual_projection(pooled), self.dim, self.normalize)


def load_clip(path: Path, attn: str = "eager") -> nn.Module:
    from transformers import CLIPModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return CLIPModel.from_pretrained(str(path), attn_implementation=attn).eval()


def build_clip_encoder(path: Path, tower: str, normalize: bool, dim: int | None, attn: str = "eager") -> nn.Module:
    model = load_clip(path, attn)
    encoder = ClipVisionEncoder(model, normalize, dim) if tower == "vision" else ClipTextEncoder(model, normalize, dim)
    return encoder.eval()
