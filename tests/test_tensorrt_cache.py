"""The TensorRT-independent core of engine/trt, compiled and run here with the C++ compiler:
SHA-256, the optimisation-profile plan, the engine cache key and file format (round trip, bit rot,
torn writes, wrong magic or key), atomic writes and the per-GPU build lock
(tests/tensorrt/test_cache.cpp)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["tests/tensorrt/test_cache.cpp", "engine/trt/sha256.cpp", "engine/trt/profiles.cpp",
           "engine/trt/engine_cache.cpp"]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_engine_cache_profiles_and_sha256(tmp_path: Path) -> None:
    binary = tmp_path / "test_cache"
    compile_cmd = ["g++", "-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-I", "engine",
                   *SOURCES, "-o", str(binary)]
    built = subprocess.run(compile_cmd, cwd=REPO, check=False, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    result = subprocess.run([str(binary), str(tmp_path / "scratch")], check=False, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
