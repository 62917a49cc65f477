#!/usr/bin/env bash
# Builds and runs the C++ engine tests three times: plain, ASan+UBSan, TSan (for the rings).
set -euo pipefail
cd "$(dirname "$0")/../.."
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
for san in none address thread; do
    dir="build/ctest-$san"
    cmake -S . -B "$dir" "${gen[@]}" -DIGNITE_BUILD_PYTHON=OFF -DIGNITE_BUILD_TESTS=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIGNITE_SANITIZE="$([ $san = none ] && echo '' || echo $san)" >/dev/null
    cmake --build "$dir" -j 2 >/dev/null
    echo "== ctest ($san)"
    # TSan needs the address space layout it expects on newer kernels.
    if [ $san = thread ] && command -v setarch >/dev/null; then
        setarch "$(uname -m)" -R ctest --test-dir "$dir" --output-on-failure
    else
        ctest --test-dir "$dir" --output-on-failure
    fi
done
