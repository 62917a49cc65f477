"""What a model is for Ignite: architecture facts from config.json and the recipe (pooling,
normalisation, max length, prompts) from its sentence-transformers files, else from the
family recipes in the repository's models/ folder."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ignite.errors import ModelError
from ignite.models.clip_config import is_clip

POOLING_MODES = ("mean", "cls", "max", "lasttoken", "mean_sqrt_len")

# sentence-transformers' 1_Pooling/config.json keys, in its own order of precedence.
_ST_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    model_type: str
    hidden_size: int
    max_position: int
    pooling: str
    normalize: bool
    max_length: int
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt: str | None = None
    recipe_source: str = "sentence-transformers"
    towers: tuple[str, ...] = ("text",)  # a CLIP model has ("text", "vision"): the input decides which runs

    @property
    def is_clip(self) -> bool:
        return "vision" in self.towers

    @property
    def tokenizer_path(self) -> Path:
        return self.path / "tokenizer.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None


def _families() -> list[dict[str, Any]]:
    text = resources.files("ignite.recipes").joinpath("families.json").read_text(encoding="utf-8")
    return json.loads(text)["families"]


def _st_pooling(path: Path) -> tuple[str, bool] | None:
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return None
    pooling, normalize = None, False
    for module in _read_json(modules_file):
        kind = module.get("type", "")
        if kind.endswith(".Pooling"):
            cfg = _read_json(path / module.get("path", "") / "config.json")
            if cfg.get("pooling_mode"):
                pooling = str(cfg["pooling_mode"]).replace("_tokens", "").replace("_token", "")
            else:
                pooling = next((mode for key, mode in _ST_POOLING_KEYS.items() if cfg.get(key)), None)
        elif kind.endswith(".Normalize"):
            normalize = True
    if pooling is None:
        return None
    if pooling not in POOLING_MODES:
        raise ModelError(f"{path}: pooling {pooling!r} is not supported; use --pooling with one of {POOLING_MODES}")
    return pooling, normalize


def load_spec(path: Path, name: str) -> ModelSpec:
    config_file = path / "config.json"
    config = _read_json(config_file)
    if not (path / "tokenizer.json").is_file():
        raise ModelError(f"{path} has no tokenizer.json: Ignite needs a fast (tokenizers) tokenizer file")
    if is_clip(config):
        return _clip_spec(path, name, config)
    hidden = int(config.get("hidden_size") or config.get("d_model") or 0)
    max_pos = int(config.get("max_position_embeddings") or 512)
    model_type = str(config.get("model_type", "unknown"))

    family = next(f for f in _families() if re.search(re.escape(f["match"]), name + " " + model_type, re.I)
                  or f["match"] == "")
    st = _st_pooling(path)
    st_cfg = _read_json(path / "sentence_bert_config.json") if (path / "sentence_bert_config.json").is_file() else {}
    st_prompts = _read_json(path / "config_sentence_transformers.json") \
        if (path / "config_sentence_transformers.json").is_file() else {}

    pooling, normalize = st if st else (family["pooling"], bool(family["normalize"]))
    max_length = int(st_cfg.get("max_seq_length") or family["max_length"])
    # BERT-style position tables count the padding offset of RoBERTa-likes too; never exceed them.
    max_length = min(max_length, max_pos - (2 if model_type in ("roberta", "xlm-roberta") else 0))
    prompts = dict(st_prompts.get("prompts") or family.get("prompts") or {})
    default_prompt = st_prompts.get("default_prompt_name") if st_prompts else family.get("default_prompt")
    return ModelSpec(
        name=name, path=path, model_type=model_type, hidden_size=hidden, max_position=max_pos,
        pooling=pooling, normalize=normalize, max_length=max_length, prompts=prompts,
        default_prompt=default_prompt or None,
        recipe_source="sentence-transformers" if st else f"family recipe {family['match'] or 'default'!r}",
    )


def _clip_spec(path: Path, name: str, config: dict[str, Any]) -> ModelSpec:
    """CLIP: both towers end in a projection to `projection_dim`, normalised; the text tower
    pools its end-of-text token and reads at most its position table (77 tokens)."""
    if not (path / "preprocessor_config.json").is_file():
        raise ModelError(f"{path} is a CLIP model without preprocessor_config.json (its image preprocessing)")
    text = config.get("text_config") or {}
    max_pos = int(text.get("max_position_embeddings") or 77)
    return ModelSpec(name=name, path=path, model_type=str(config.get("model_type", "clip")),
                     hidden_size=int(config.get("projection_dim") or 512), max_position=max_pos, pooling="eos",
                     normalize=True, max_length=max_pos, recipe_source="CLIP", towers=("text", "vision"))
