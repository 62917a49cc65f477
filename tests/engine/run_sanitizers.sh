#!/usr/bin/env bash
# Builds and runs the C++ engine tests (ctest) three times: plain, ASan+UBSan, TSan.
# Build trees: build/ctest-{plain,address,thread} (IGNITE_CTEST_ROOT=dir puts them elsewhere, e.g.
# when two checkouts' runs would otherwise share them). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
root="${IGNITE_CTEST_ROOT:-build}"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)

for san in plain address thread; do
    dir="$root/ctest-$san"
    log="$dir.log"
    mkdir -p "$root"
    start=$SECONDS
    # Quiet on success; the log is printed when configure or build fails.
    if ! { cmake -S . -B "$dir" "${gen[@]}" -DIGNITE_BUILD_PYTHON=OFF -DIGNITE_BUILD_TESTS=ON \
               -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIGNITE_SANITIZE="${san#plain}" &&
           cmake --build "$dir" -j "$jobs"; } >"$log" 2>&1; then
        cat "$log"
        echo "== $san: configure/build FAILED" >&2
        exit 1
    fi
    echo "== ctest ($san)"
    run=(ctest --test-dir "$dir" --output-on-failure)
    # TSan's shadow memory needs a layout that kernels with high mmap randomisation break
    # ("unexpected memory mapping"); running without ASLR avoids it.
    if [ "$san" = thread ] && command -v setarch >/dev/null; then
        run=(setarch "$(uname -m)" -R "${run[@]}")
    fi
    TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}" "${run[@]}" | grep -vE '^(Test project|\s*Start )'
    echo "   ($san: $((SECONDS - start)) s including build)"
done
