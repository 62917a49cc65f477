"""Builds the native module ignite._engine with CMake; the metadata lives in pyproject.toml.

Environment: CMAKE_ARGS adds CMake options (e.g. "-DTENSORRT_ROOT=/opt/tensorrt"),
CMAKE_BUILD_PARALLEL_LEVEL sets the build's parallelism, CMAKE_GENERATOR overrides Ninja.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    """An extension that CMakeLists.txt builds, so setuptools gets no sources."""

    def __init__(self, name: str, target: str) -> None:
        super().__init__(name, sources=[])
        self.target = target


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            return super().build_extension(ext)
        import pybind11  # a build requirement; imported here so `setup.py --help` works without it

        # get_ext_fullpath points into the source tree for editable installs and into the
        # wheel's staging directory otherwise, so the module lands where the import finds it.
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        user_args = shlex.split(os.environ.get("CMAKE_ARGS", ""))
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={'Debug' if self.debug else 'Release'}",
            f"-DIGNITE_VERSION={self.distribution.get_version()}",
        ]
        ninja = shutil.which("ninja")
        if ninja and "CMAKE_GENERATOR" not in os.environ and not any(a.startswith("-G") for a in user_args):
            # pip builds in a throwaway environment each time: name this run's ninja, or the
            # cache would keep pointing at one that has since been deleted.
            args += ["-GNinja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
        _drop_cache_from_other_generator(build_dir, "Ninja" if "-GNinja" in args else None)
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args, *user_args], check=True)

        build = ["cmake", "--build", str(build_dir), "--target", ext.target]
        if "CMAKE_BUILD_PARALLEL_LEVEL" not in os.environ:  # cmake reads it itself when set
            build += ["-j", str(self.parallel or os.cpu_count() or 1)]
        subprocess.run(build, check=True)


def _drop_cache_from_other_generator(build_dir: Path, generator: str | None) -> None:
    """CMake refuses to reuse a build directory configured with another generator."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.is_file():
        return
    cached = next((line.split("=", 1)[1].strip() for line in cache.read_text().splitlines()
                   if line.startswith("CMAKE_GENERATOR:")), None)
    if generator is not None and cached != generator:
        shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)


setup(
    packages=find_packages("python") + ["ignite.recipes"],
    # Model family recipes are data at the top level (models/) and ship as ignite.recipes.
    package_dir={"": "python", "ignite.recipes": "models"},
    package_data={"ignite.recipes": ["*.json"], "ignite": ["_engine.pyi"]},
    ext_modules=[CMakeExtension("ignite._engine", target="_engine")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
