"""The embedding pipeline: reader -> tokenizer/batcher -> worker(s) -> writer, joined by
bounded native rings (channel.py), one window or batch per message."""
