"""Inputs (finding and reading files into windows) and outputs (npy, parquet, shard folders)."""
