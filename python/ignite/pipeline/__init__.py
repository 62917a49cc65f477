"""The embedding pipeline: reader -> tokenizer/batcher -> worker(s) -> writer, joined by
bounded native rings (channel.py), one window or batch per message. stages.py: the ingest
stages; dispatch.py: the device workers; writer.py: order, append, commit; signals.py: SIGINT and
SIGTERM; run.py: run_pipeline, which wires them."""
