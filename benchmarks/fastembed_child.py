"""One fastembed run, file to file, in its own process (run by benchmark.py): export the model's
token embeddings to ONNX in fastembed's local-model layout, load it as a custom model with the
model's pooling and normalisation, read the JSONL, embed, np.save. Prints a JSON line with its
timings; the export and the session load count as load time, not run time.

fastembed normally downloads its ONNX files from a hub; offline, `specific_model_path` points it
at a local folder, which is what this child builds."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json", "vocab.txt")


def export_token_embeddings(model_dir: Path, dest: Path) -> int:
    """Write dest/onnx/model.onnx (last_hidden_state of the transformer) plus the tokenizer
    files fastembed reads; return the hidden size."""
    import torch
    from transformers import AutoModel

    class TokenEmbeddings(torch.nn.Module):  # keyword call: positional order differs across versions
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(model_dir).eval()

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = TokenEmbeddings()
    (dest / "onnx").mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (model_dir / name).exists():
            shutil.copy(model_dir / name, dest / name)
    ids = torch.ones(2, 16, dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(dest / "onnx" / "model.onnx"),
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"], dynamic_axes={n: axes for n in (
                          "input_ids", "attention_mask", "token_type_ids", "last_hidden_state")},
                      opset_version=17, dynamo=False)
    return int(model.bert.config.hidden_size)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="a local sentence-transformers model folder")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--work", required=True, help="folder for the exported model")
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args()
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    model_dir = Path(args.model)
    pooling_cfg = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    pooling = PoolingType.CLS if pooling_cfg.get("pooling_mode_cls_token") else PoolingType.MEAN
    normalize = any("Normalize" in m.get("type", "") for m in json.loads((model_dir / "modules.json").read_text()))
    t0 = time.perf_counter()
    local = Path(args.work) / "fastembed-model"
    dim = export_token_embeddings(model_dir, local)
    TextEmbedding.add_custom_model(model="ignite-bench/local-model", pooling=pooling, normalization=normalize,
                                   sources=ModelSource(hf="ignite-bench/local-model"), dim=dim)
    model = TextEmbedding("ignite-bench/local-model", specific_model_path=str(local), threads=os.cpu_count())
    list(model.embed(["warm up"] * 8, batch_size=8))
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    with open(args.input, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    emb = np.stack(list(model.embed(texts, batch_size=args.batch_size)))
    np.save(args.output, emb.astype(np.float32))
    print(json.dumps({"load_s": load, "run_s": time.perf_counter() - t1, "rows": len(texts)}))


if __name__ == "__main__":
    main()
