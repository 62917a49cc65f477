"""What marks a CLIP model in config.json, without importing torch."""
from __future__ import annotations

from typing import Any

TOWERS = ("text", "vision")


def is_clip(config: dict[str, Any]) -> bool:
    """A config.json of a two-tower CLIP model (vision_config and text_config)."""
    return "vision_config" in config and "text_config" in config
