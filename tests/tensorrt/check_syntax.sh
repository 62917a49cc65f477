#!/usr/bin/env bash
# Compile-checks Ignite's TensorRT code without TensorRT installed: every engine/trt/*.cpp,
# csrc/trt_bindings.cpp, and each engine/trt/*.h on its own (self-contained headers), with
# g++ -fsyntax-only against a TensorRT header directory and the CUDA toolkit headers.
#
# usage: tests/tensorrt/check_syntax.sh HEADER_DIR [ONNX_PARSER_HEADER_DIR]
#   HEADER_DIR              holds NvInfer.h (a TensorRT install's include/, or include/ of the
#                           public NVIDIA/TensorRT repository at a release tag; see fetch_headers.sh)
#   ONNX_PARSER_HEADER_DIR  holds NvOnnxParser.h when HEADER_DIR does not (TensorRT <= 10.13
#                           keeps it in the onnx-tensorrt submodule)
# environment: CXX (default g++), CUDA_INCLUDE (default /usr/local/cuda/include),
#              PYTHON (default python3), WERROR=0 to report warnings without failing.
# Exit status: 0 when everything compiles, 1 when anything does not, 2 on bad usage.
set -u -o pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
headers=$(cd "$1" 2>/dev/null && pwd) || { echo "no such directory: $1" >&2; exit 2; }
[ -f "$headers/NvInfer.h" ] || { echo "$headers has no NvInfer.h" >&2; exit 2; }
parser=""
if [ $# -eq 2 ]; then
  parser=$(cd "$2" 2>/dev/null && pwd) || { echo "no such directory: $2" >&2; exit 2; }
fi
if [ ! -f "$headers/NvOnnxParser.h" ] && { [ -z "$parser" ] || [ ! -f "$parser/NvOnnxParser.h" ]; }; then
  echo "NvOnnxParser.h is in neither $headers nor ${parser:-(no second directory given)}" >&2
  exit 2
fi

cd "$(dirname "$0")/../.." || exit 2
CXX=${CXX:-g++}
CUDA_INCLUDE=${CUDA_INCLUDE:-/usr/local/cuda/include}
PYTHON=${PYTHON:-python3}
[ -f "$CUDA_INCLUDE/cuda_runtime_api.h" ] || { echo "no cuda_runtime_api.h in $CUDA_INCLUDE (set CUDA_INCLUDE)" >&2; exit 2; }
pybind=$("$PYTHON" -c 'import pybind11; print(pybind11.get_include())') || { echo "pybind11 is not importable by $PYTHON" >&2; exit 2; }
python_inc=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])') || exit 2

# Third-party headers go in with -isystem (an -I whose own warnings are not ours to fix).
flags=(-std=c++17 -fsyntax-only -Wall -Wextra -DIGNITE_WITH_TENSORRT -DIGNITE_WITH_CUDA -I engine
       -isystem "$headers" -isystem "$CUDA_INCLUDE")
[ -n "$parser" ] && flags+=(-isystem "$parser")
[ "${WERROR:-1}" = 0 ] || flags+=(-Werror)
binding_flags=(-isystem "$pybind" -isystem "$python_inc")

version=$(printf '#include <NvInferVersion.h>\nNV_TENSORRT_MAJOR.NV_TENSORRT_MINOR.NV_TENSORRT_PATCH\n' |
          "$CXX" -E -P -x c++ -isystem "$headers" - 2>/dev/null | tail -n 1 | tr -d ' ')
echo "TensorRT headers $version from $headers${parser:+ (ONNX parser from $parser)}; $("$CXX" --version | head -n 1)"

failed=0
check() {  # check LABEL [extra flags...] -- compiler input arguments
  local label=$1
  shift
  if "$CXX" "$@"; then
    echo "ok    $label"
  else
    echo "FAIL  $label"
    failed=$((failed + 1))
  fi
}

sources=(engine/trt/*.cpp)
for src in "${sources[@]}"; do
  check "$src" "${flags[@]}" "$src"
done
check csrc/trt_bindings.cpp "${flags[@]}" "${binding_flags[@]}" csrc/trt_bindings.cpp
headers_alone=(engine/trt/*.h)
for header in "${headers_alone[@]}"; do
  name=${header#engine/}
  check "$header (alone)" "${flags[@]}" -x c++ - <<< "#include \"$name\""
done

total=$(( ${#sources[@]} + 1 + ${#headers_alone[@]} ))
if [ "$failed" -ne 0 ]; then
  echo "$failed of $total failed against TensorRT $version"
  exit 1
fi
echo "all $total compile against TensorRT $version"
