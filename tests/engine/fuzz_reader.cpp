// Fuzz target for the native reader (libFuzzer: LLVMFuzzerTestOneInput). The input bytes are
// written to a file and read three ways: as plain JSONL with a tiny and a large read chunk
// (their records must agree: framing does not depend on chunking when no line is too long),
// as plain text, and as zstd and gzip archives (decoders fed garbage must report damage, not
// crash). Checks: no crash, no sanitizer report, offsets and lines consistent, texts of ok
// records valid UTF-8, every status known.
//
// Built by tests/engine/run_fuzz.sh, with clang's libFuzzer where it exists; with
// IGNITE_FUZZ_STANDALONE it gets its own main() that feeds seeded random JSONL-like and
// mutated inputs for a time budget, for compilers without libFuzzer (g++).
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "reader/json_record.h"
#include "reader/window_reader.h"

namespace {

using ignite::reader::Compression;
using ignite::reader::ReaderOptions;
using ignite::reader::RecordWindow;
using ignite::reader::WindowReader;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

const std::string& input_path() {
  static const std::string path = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") +
                                  "/ignite_fuzz_reader_" + std::to_string(::getpid());
  return path;
}

struct Summary {
  std::vector<std::string> texts;
  std::vector<std::int64_t> lines;
  std::vector<std::uint8_t> status;
  bool damaged = false;
};

Summary read(Compression compression, bool jsonl, std::size_t read_chunk, std::size_t max_line_bytes) {
  ReaderOptions o;
  o.path = input_path();
  o.compression = compression;
  o.jsonl = jsonl;
  o.field = "a.b";
  o.id_field = "id";
  o.window_records = 3;
  o.read_chunk = read_chunk;
  o.max_line_bytes = max_line_bytes;
  WindowReader reader(o);
  Summary s;
  RecordWindow w;
  std::int64_t previous_line = 0;
  while (reader.next(w)) {
    const std::size_t n = w.size();
    check(n > 0 && n <= 3, "window size");
    check(w.text_offsets.size() == n + 1 && w.id_offsets.size() == n + 1 && w.status.size() == n, "window arrays");
    check(w.text_offsets.back() == static_cast<std::int64_t>(w.text.size()), "arena size");
    for (std::size_t i = 0; i < n; ++i) {
      check(w.text_offsets[i] <= w.text_offsets[i + 1] && w.id_offsets[i] <= w.id_offsets[i + 1], "offsets grow");
      check(w.lines[i] > previous_line, "lines grow");
      previous_line = w.lines[i];
      check(w.status[i] < ignite::reader::kStatusCount, "known status");
      const std::string text = w.text.substr(static_cast<std::size_t>(w.text_offsets[i]),
                                             static_cast<std::size_t>(w.text_offsets[i + 1] - w.text_offsets[i]));
      check(text.empty() || w.status[i] == 0, "text only for ok records");
      check(ignite::reader::is_valid_utf8(text), "texts are UTF-8");
      s.texts.push_back(text);
      s.lines.push_back(w.lines[i]);
      s.status.push_back(w.status[i]);
    }
    s.damaged = s.damaged || w.damaged;
  }
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::ofstream(input_path(), std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  const std::size_t big = std::size_t{1} << 30;
  const Summary small_chunks = read(Compression::kNone, true, 3, big);
  const Summary whole = read(Compression::kNone, true, 1 << 16, big);
  check(small_chunks.texts == whole.texts && small_chunks.lines == whole.lines && small_chunks.status == whole.status,
        "records independent of the read chunk");
  check(!whole.damaged, "plain files are never damaged");
  (void)read(Compression::kNone, true, 5, 16);  // too long lines at chunk ends
  (void)read(Compression::kNone, false, 7, 1 << 20);
  (void)read(Compression::kZstd, true, 11, 1 << 20);
  (void)read(Compression::kGzip, true, 11, 1 << 20);
  return 0;
}

#ifdef IGNITE_FUZZ_STANDALONE
// Random and mutated inputs for `seconds` (argv[1], default 60): JSONL-like lines built from
// pieces (objects, nested keys, escapes, surrogates, numbers, bad bytes) and mutations of
// earlier inputs; some are wrapped in zstd/gzip magic so the decoders see them.
int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 60.0;
  std::mt19937_64 rng(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20261129);
  const char* pieces[] = {"{\"a\": {\"b\": \"", "\"}}", "{\"id\": ", "\"id\"", ": ", ", ", "\n", "\r\n", "\xEF\xBB\xBF",
                          "\\u00e9", "\\ud83d\\ude00", "\\ud800", "\\\"", "\\\\", "\\n", "\xC3\xA9", "\xFF", "\xED\xA0\x80",
                          "18446744073709551616", "-0", "1e400", "1.5e-7", "[", "]", "{", "}", "null", "true", "\"x\"",
                          "\x28\xB5\x2F\xFD", "\x1F\x8B\x08", " ", "\t", "\x0B"};
  std::vector<std::string> corpus{"{\"a\": {\"b\": \"hello\"}, \"id\": 1}\n", ""};
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::size_t runs = 0;
  while (std::chrono::steady_clock::now() < end) {
    std::string input;
    if (rng() % 2) {
      const std::size_t n = rng() % 48;
      for (std::size_t i = 0; i < n; ++i) {
        if (rng() % 4) {
          input += pieces[rng() % (sizeof(pieces) / sizeof(*pieces))];
        } else {
          input.push_back(static_cast<char>(rng()));
        }
      }
    } else {
      input = corpus[rng() % corpus.size()];
      const std::size_t edits = 1 + rng() % 6;
      for (std::size_t e = 0; e < edits; ++e) {
        const std::size_t at = input.empty() ? 0 : rng() % (input.size() + 1);
        switch (rng() % 3) {
          case 0: if (at < input.size()) input[at] = static_cast<char>(input[at] ^ (1 << (rng() % 8))); break;
          case 1: input.insert(at, pieces[rng() % (sizeof(pieces) / sizeof(*pieces))]); break;
          default: if (at < input.size()) input.erase(at, 1 + rng() % 4); break;
        }
      }
    }
    if (input.size() > 4096) input.resize(4096);
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    if (corpus.size() < 2048) corpus.push_back(input);
    else corpus[rng() % corpus.size()] = input;
    ++runs;
  }
  std::remove(input_path().c_str());
  std::printf("fuzz_reader (standalone): %zu inputs in %.0f s, no failure\n", runs, seconds);
  return 0;
}
#endif
