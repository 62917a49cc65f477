"""Scale-out over a batch scheduler: the shard plan, which shard this task is, per-shard runs and
the merge of their outputs and index."""
