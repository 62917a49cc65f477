#!/usr/bin/env bash
# Where check_syntax.sh's TensorRT headers come from. This script downloads nothing: it extracts
# the headers of one release tag from a local clone of the public NVIDIA/TensorRT repository,
# and without one prints how to make it.
#
# usage: tests/tensorrt/fetch_headers.sh REPO TAG DEST
#   REPO  a local clone of https://github.com/NVIDIA/TensorRT (a bare or --filter=blob:none clone
#         is enough: only include/ is read)
#   TAG   a release tag, e.g. v11.1 or v10.16 (`git -C REPO tag` lists them)
#   DEST  directory to extract into; the headers land in DEST/include
#
# To get a clone (run it yourself; this script does not):
#   git clone --bare --filter=blob:none https://github.com/NVIDIA/TensorRT.git /tmp/TensorRT.git
# Then, for example:
#   tests/tensorrt/fetch_headers.sh /tmp/TensorRT.git v11.1  /tmp/trt-11.1
#   tests/tensorrt/fetch_headers.sh /tmp/TensorRT.git v10.16 /tmp/trt-10.16
#   tests/tensorrt/check_syntax.sh /tmp/trt-11.1/include
#   tests/tensorrt/check_syntax.sh /tmp/trt-10.16/include
# From v10.16 on, NvOnnxParser.h is in include/. Up to v10.13 it lives in the parsers/onnx
# submodule (https://github.com/onnx/onnx-tensorrt at the commit the tag pins): extract its
# NvOnnxParser.h into a directory of its own and give that to check_syntax.sh as the second
# argument. A TensorRT install (the tar package's include/, or /usr/include/x86_64-linux-gnu
# from the Debian packages) works as HEADER_DIR directly.
set -eu -o pipefail

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -eq 3 ] || usage
repo=$1 tag=$2 dest=$3
git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 || { echo "$repo is not a git repository" >&2; usage; }
git -C "$repo" rev-parse --verify --quiet "$tag^{commit}" >/dev/null || { echo "no tag $tag in $repo" >&2; exit 2; }
mkdir -p "$dest"
git -C "$repo" archive "$tag" include | tar -x -C "$dest"
echo "TensorRT $tag headers in $dest/include"
if [ ! -f "$dest/include/NvOnnxParser.h" ]; then
  pinned=$(git -C "$repo" ls-tree "$tag" parsers/onnx | awk '{print $3}')
  echo "NvOnnxParser.h is not in include/ at $tag: it is in the onnx/onnx-tensorrt submodule at ${pinned:-?}" >&2
fi
