"""Build the native module ignite._engine with CMake (metadata lives in pyproject.toml).

CMAKE_ARGS adds CMake options (e.g. -DTENSORRT_ROOT=...); CMAKE_BUILD_PARALLEL_LEVEL sets the
build's parallelism."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={'Debug' if self.debug else 'Release'}",
        ]
        if shutil.which("ninja") or _has_ninja_module():
            args.append("-GNinja")
        args += [a for a in os.environ.get("CMAKE_ARGS", "").split() if a]
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "_engine", "-j", jobs], check=True)


def _has_ninja_module() -> bool:
    try:
        import ninja  # noqa: F401
    except ImportError:
        return False
    return True


setup(
    # Model recipes live at the top level (models/) as data and ship as ignite.recipes.
    packages=find_packages("python") + ["ignite.recipes"],
    package_dir={"": "python", "ignite.recipes": "models"},
    package_data={"ignite.recipes": ["*.json"]},
    ext_modules=[CMakeExtension("ignite._engine")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
