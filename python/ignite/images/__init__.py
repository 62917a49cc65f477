"""Image inputs: decoding and CLIP preprocessing into fixed-shape pixel batches."""
