#!/usr/bin/env bash
# The whole suite: C++ engine tests (plain, ASan+UBSan, TSan) under ctest, the binding-heavy
# Python tests against an ASan build of ignite._engine, then pytest with the slowest tests printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/engine/run_sanitizers.sh
bash tests/engine/run_fuzz.sh "${IGNITE_FUZZ_SECONDS:-60}"
bash tests/engine/run_bindings_asan.sh
python -m pytest tests "$@"
