#!/usr/bin/env python3
"""A CLIP model with random weights in the Hugging Face layout (config.json with vision_config and
text_config, model.safetensors, preprocessor_config.json with CLIP's defaults, and a CLIP-style
byte-level BPE tokenizer trained here), for tests and throughput measurements where no CLIP
weights can be downloaded. Embeddings are meaningless; speed and fidelity to transformers are the
architecture's. Say "random weights" wherever a figure made with it is reported.

    python benchmarks/random_clip.py vit-b-32 /tmp/models/clip-vit-b-32
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
from collections.abc import Iterable
from pathlib import Path

# name: (vision hidden, layers, heads, mlp, patch, image size; text hidden, layers, heads, mlp; projection)
ARCHITECTURES = {
    "tiny": (32, 2, 2, 64, 16, 224, 32, 2, 2, 64, 16),
    "vit-b-32": (768, 12, 12, 3072, 32, 224, 512, 12, 8, 2048, 512),
}
VOCAB = {"tiny": 1000, "vit-b-32": 8000}
SPECIAL = ["<|startoftext|>", "<|endoftext|>"]
# CLIPImageProcessor's defaults, as openai/clip-vit-base-patch32 ships them.
PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
    "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor", "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 224},
}
PASSAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "passages.jsonl.zst"


def vision_config(name: str) -> dict[str, int]:
    """The vision tower's config of architecture `name`."""
    vh, vl, vheads, vmlp, patch, size = ARCHITECTURES[name][:6]
    return {"hidden_size": vh, "num_hidden_layers": vl, "num_attention_heads": vheads, "intermediate_size": vmlp,
            "patch_size": patch, "image_size": size}


def generated_texts(n: int, seed: int = 0) -> list[str]:
    """Sentences of pseudo-words, for a tokenizer where no corpus is at hand."""
    import random

    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "ve", "so", "pi", "da", "an", "er", "in", "on", "st", "th"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(800)]
    words += ["a", "the", "photo", "of", "red", "bicycle", "on", "bridge", "cat", "dog", "mountain", "sea"]
    return [" ".join(rng.choices(words, k=rng.randint(4, 30))) + rng.choice([".", "!", "?", ""]) for _ in range(n)]


def corpus_texts(n: int) -> list[str]:
    """The first n passages of the shared corpus when present, else generated text."""
    if not PASSAGES.is_file():
        return generated_texts(n)
    import zstandard

    with open(PASSAGES, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
        lines = io.TextIOWrapper(reader, encoding="utf-8")
        return [json.loads(line)["text"] for line in itertools.islice(lines, n)]


def train_tokenizer(texts: Iterable[str], vocab_size: int, dest: Path) -> None:
    """A byte-level BPE with CLIP's normaliser, pre-tokenizer and '</w>' word ends, trained on
    `texts`; saved by transformers' CLIPTokenizer so that it and AutoTokenizer load it as CLIP's."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    tok = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix="</w>", unk_token=SPECIAL[1]))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                                   r"""[^\s\p{L}\p{N}]+"""), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, end_of_word_suffix="</w>",
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    CLIPTokenizer(vocab=model["vocab"], merges=merges, model_max_length=77).save_pretrained(str(dest))


def make(name: str, dest: Path, seed: int = 0, texts: list[str] | None = None) -> Path:
    """Write a random-weight CLIP of architecture `name` into `dest`; returns `dest`."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    th, tl, theads, tmlp, proj = ARCHITECTURES[name][6:]
    dest.mkdir(parents=True, exist_ok=True)
    train_tokenizer(texts if texts is not None else corpus_texts(3000), VOCAB[name], dest)
    vocab = json.loads((dest / "tokenizer.json").read_text())["model"]["vocab"]
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": th, "num_hidden_layers": tl,
                     "num_attention_heads": theads, "intermediate_size": tmlp, "max_position_embeddings": 77, "bos_token_id": vocab[SPECIAL[0]],
                     "eos_token_id": vocab[SPECIAL[1]], "pad_token_id": vocab[SPECIAL[1]]},
        vision_config=vision_config(name),
        projection_dim=proj)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    with torch.no_grad():  # transformers initialises CLIP's weights tiny; spread them as trained ones are
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
    model.save_pretrained(dest)
    (dest / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))
    return dest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("architecture", choices=sorted(ARCHITECTURES))
    p.add_argument("dest", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(make(args.architecture, args.dest, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
