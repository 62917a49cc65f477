"""FAISS index built inline: plan (which index), builder (train, add, seal shards, recall),
store (the index folder: info file, shards, merge, load)."""
