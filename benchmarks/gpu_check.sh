#!/usr/bin/env bash
# The GPU check: one command on a bare GPU machine (PyTorch, CUDA, nvcc, CMake, pybind11; no
# network, no TensorRT), bounded to 8 minutes of wall time:
#   1. builds ignite._engine with CUDA into python/ignite (headers and libraries from
#      .gpu-check/sysroot when the machine lacks them; see benchmarks/gpu_deps.sh);
#   2. runs the gpu-marked tests (tests/test_gpu.py);
#   3. times `ignite embed --gpus all` file to file on passages.jsonl.zst with all-MiniLM-L6-v2 and
#      an e5-small-v2-architecture model with random weights, against the backend alone on the same
#      batches and sentence-transformers fp16 at its best batch size (benchmarks/gpu_check.py);
#   4. writes results.json and results.md into OUT and prints them;
#   5. on a GPU machine, with the last 90 s: benchmarks/pipeline_cpu_cost.py (null model) at 1 to
#      all-but-two tokenizer threads, into OUT/pipeline_cpu_cost.{txt,json,png}.
# --cpu runs the same steps on the CPU on 300 passages in about a minute (CI runs it, so the script
# cannot rot): the build is configured, and compiled only when no module can be imported.
#
# usage: benchmarks/gpu_check.sh [--cpu] [OUT]     (OUT defaults to $OUT, else ./gpu-check-out)
# environment: IGNITE_SHARED_DATA (folder holding passages.jsonl.zst; default .gpu-check/data, else
#              ../shared/data), GPU_CHECK_SECONDS (the wall-time bound, default 480 / 420 with --cpu)
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
mode=gpu
if [ "${1:-}" = "--cpu" ]; then mode=cpu; shift; fi
out=$(mkdir -p "${1:-${OUT:-gpu-check-out}}" && cd "${1:-${OUT:-gpu-check-out}}" && pwd)
deps=$repo/.gpu-check
budget=${GPU_CHECK_SECONDS:-$([ $mode = gpu ] && echo 480 || echo 420)}
deadline=$(( $(date +%s) + budget ))
left() { echo $(( deadline - $(date +%s) )); }
# N/D of the seconds left, at least 1 (`timeout 0` would never end).
share() { local s=$(( $(left) * $1 / $2 )); echo $(( s > 1 ? s : 1 )); }
say() { printf 'gpu_check: %s\n' "$*" >&2; }
export PYTHONUNBUFFERED=1 PYTHONPATH="$repo/python${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
steps=()

# 0. Wheels the machine lacks, into a private folder (nothing installed system-wide).
if [ $mode = gpu ] && compgen -G "$deps/whl/*.whl" >/dev/null; then
  site=$(mktemp -d /tmp/ignite-gpu-site.XXXX)
  "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$deps"/whl/*.whl &&
    export PYTHONPATH="$PYTHONPATH:$site" || say "wheels from $deps/whl did not install"
fi
if [ -d "$deps/data" ]; then export IGNITE_SHARED_DATA=${IGNITE_SHARED_DATA:-$deps/data}; fi
data=${IGNITE_SHARED_DATA:-$repo/../shared/data}/passages.jsonl.zst
minilm=$deps/models/all-MiniLM-L6-v2
if [ -d "$minilm" ]; then export IGNITE_TEST_MODEL=${IGNITE_TEST_MODEL:-$minilm}; fi

# 1. Build. The sysroot's libraries are found through CMAKE_PREFIX_PATH and at run time through
#    the module's RPATH (CMake's build-tree default) and LD_LIBRARY_PATH.
cmake_args=(-S . -B build-gpu-check -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$(command -v "$python")"
            -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$repo/python/ignite")
pybind_dir=$("$python" -m pybind11 --cmakedir 2>/dev/null) && cmake_args+=(-Dpybind11_DIR="$pybind_dir")
if [ -d "$deps/sysroot/usr" ]; then
  cmake_args+=(-DCMAKE_PREFIX_PATH="$deps/sysroot/usr")
  export LD_LIBRARY_PATH="$deps/sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
say "configuring (${mode})"
if ! timeout "$(share 1 4)" cmake "${cmake_args[@]}" > "$out/build.log" 2>&1; then
  steps+=(--step "build=configure failed (build.log)"); say "cmake configure failed: see $out/build.log"
elif [ $mode = gpu ] || ! "$python" -c 'import ignite._engine' 2>/dev/null; then
  say "building ignite._engine"
  if timeout "$(share 1 2)" cmake --build build-gpu-check --target _engine -j "$(nproc)" >> "$out/build.log" 2>&1; then
    steps+=(--step "build=ok")
  else
    steps+=(--step "build=failed (build.log)"); say "build failed: see $out/build.log"
  fi
else
  steps+=(--step "build=configured (module already built)")
fi
grep -E '^-- Ignite:' "$out/build.log" >&2
"$python" -c 'import ignite._engine as e, json
print("gpu_check: native module", json.dumps(e.build_info()), e.cuda_devices()["devices"])' >&2

# 2. The gpu-marked tests (on a CPU they skip, which is checked too).
say "pytest -m gpu ($(left) s left)"
timeout "$(share 2 5)" "$python" -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider \
  --junitxml="$out/gpu_tests.xml" > "$out/gpu_tests.log" 2>&1
rc=$?
tail -n 15 "$out/gpu_tests.log" >&2
steps+=(--step "gpu_tests=$(tail -n 1 "$out/gpu_tests.log" | tr -d '=' | xargs) (rc $rc)")

# 3-4. Timings, bounded by what is left.
say "timings ($(left) s left)"
extra=()
[ $mode = cpu ] && extra=(--cpu --limit 300)
[ -n "${IGNITE_TEST_MODEL:-}" ] && extra+=(--model "$IGNITE_TEST_MODEL")
# On a GPU machine the last seconds go to step 5.
reserve=$([ $mode = gpu ] && echo 90 || echo 0)
timeout "$(( $(left) - reserve > 1 ? $(left) - reserve : 1 ))" "$python" benchmarks/gpu_check.py --input "$data" \
  --out "$out" --deadline "$(( deadline - reserve ))" "${extra[@]}" "${steps[@]}"
rc=$?
# gpu_check.py prints the table when it ends on its own; cut short, what it had written is shown here.
[ $rc -eq 0 ] || cat "$out/results.md" 2>/dev/null
cat "$out/results.json" 2>/dev/null

# 5. The pipeline's own CPU cost with the null model on this machine's cores: thread scaling the
#    2-core development machines cannot measure (GPU mode only; its result does not change rc).
if [ $mode = gpu ] && [ "$(left)" -gt 30 ]; then
  cores=$(nproc)
  say "pipeline CPU cost on $cores cores ($(left) s left)"
  timeout "$(left)" "$python" benchmarks/pipeline_cpu_cost.py --input "$data" --limit 200000 --repeat 1 \
    --batch-tokens 65536 --window-records 16384 --scaling-threads "1,$(( cores / 4 )),$(( cores / 2 )),$(( cores - 2 ))" \
    --json "$out/pipeline_cpu_cost.json" > "$out/pipeline_cpu_cost.txt" 2>&1 || say "pipeline CPU cost cut short"
  tail -n 20 "$out/pipeline_cpu_cost.txt" >&2
fi
say "results in $out (results.json, results.md)"
exit $rc
