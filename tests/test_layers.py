"""The package's layers: a lower one never imports a higher one (at module level, lazily or for
type checking alike). rows/ is the bottom; io/, images/, models/ and backends/ sit above it and
below pipeline/; index/ uses the pipeline, which knows the index only as a protocol."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "ignite"
# A layer, and the packages it must not import.
FORBIDDEN = {
    "rows": ("io", "images", "models", "backends", "pipeline", "index", "shards", "embed", "cli"),
    "io": ("pipeline", "index", "shards", "embed", "cli"),
    "images": ("pipeline", "index", "shards", "embed", "cli"),
    "models": ("pipeline", "index", "shards", "embed", "cli"),
    "backends": ("pipeline", "index", "shards", "embed", "cli"),
    "pipeline": ("index", "shards", "embed", "cli"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_upward_imports(layer: str) -> None:
    bad = [f"{path.relative_to(PACKAGE)} imports {name}"
           for path in sorted((PACKAGE / layer).glob("*.py")) for name in sorted(_imports(path))
           if any(name == f"ignite.{up}" or name.startswith(f"ignite.{up}.") for up in FORBIDDEN[layer])]
    assert not bad, bad
