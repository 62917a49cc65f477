"""Models: find a model directory, read its sentence-transformers recipe, export it to ONNX."""
from ignite.models.resolve import DEFAULT_MODEL, resolve_model
from ignite.models.spec import ModelSpec, load_spec

__all__ = ["DEFAULT_MODEL", "ModelSpec", "load_spec", "resolve_model"]
