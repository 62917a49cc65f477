#!/usr/bin/env bash
# The Python tests that drive the native bindings hardest, against an ignite._engine built with
# AddressSanitizer: lifetimes across the binding (a batch outliving its pipeline, a failed run's
# objects collected later) are invisible to the C++ tests and, without ASan, corrupt the heap
# silently until some later garbage collection aborts (as would bytes freed while the native file
# writer still reads them). Build tree: build/pybind-address
# (IGNITE_CTEST_ROOT=dir puts it elsewhere). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
root="${IGNITE_CTEST_ROOT:-build}"
dir="$root/pybind-address"
pkg="$dir/pkg"
start=$SECONDS
rm -rf "$pkg" && mkdir -p "$pkg"
cp -r python/ignite "$pkg/"
rm -f "$pkg"/ignite/_engine*.so
if ! { cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/$pkg/ignite" \
           -DPython_EXECUTABLE="$(command -v python)" -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" \
           -DCMAKE_CXX_FLAGS="-fsanitize=address -fno-omit-frame-pointer" \
           -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address" &&
       cmake --build "$dir" --target _engine -j "$jobs"; } >"$dir.log" 2>&1; then
    cat "$dir.log"
    echo "== pybind (address): configure/build FAILED" >&2
    exit 1
fi
echo "== pytest against an ASan ignite._engine"
export PYTHONPATH="$PWD/$pkg"
# The runtime must be loaded first (Python is not built with it), libstdc++ with it so that ASan
# finds __cxa_throw; leaks are off (the interpreter's own are not ours); -s shows a report that
# pytest's capture would otherwise swallow.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so.6)"
export ASAN_OPTIONS="detect_leaks=0 abort_on_error=1 ${ASAN_OPTIONS:-}"
python -c "import ignite._engine as e, sys; sys.exit(0 if e.__file__.startswith('$PWD/$pkg/') else 'loaded ' + e.__file__)"
python -m pytest -q -s -p no:cacheprovider tests/test_ingest_pipeline.py tests/test_malformed.py \
        tests/test_native_reader.py tests/test_file_writer.py "$@"
echo "   (pybind address: $((SECONDS - start)) s including build)"
