// Fuzz target for the native tokenizer (libFuzzer: LLVMFuzzerTestOneInput). Loads a BERT
// tokenizer.json (IGNITE_FUZZ_TOKENIZER_JSON, else the default model's) once, then tokenizes
// arbitrary bytes, whole and split into a batch over two threads. Invalid UTF-8 is defined to
// read as U+FFFD, one per maximal invalid subpart (Python's errors="replace"); Python never
// passes it (PyUnicode_AsUTF8AndSize refuses lone surrogates). Checks: no crash, no sanitizer
// report, offsets consistent, ids within max_length, counts >= kept ids, batch == one by one.
//
// Built by tests/engine/run_fuzz.sh, with clang's libFuzzer where it exists; with
// IGNITE_FUZZ_STANDALONE it gets its own main() that feeds seeded random and mutated inputs
// for a time budget, for compilers without libFuzzer (g++).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_json.h"

namespace {

constexpr std::size_t kMaxLength = 64;

const ignite::Tokenizer& tokenizer() {
  static const std::unique_ptr<ignite::Tokenizer> t = [] {
    const char* path = std::getenv("IGNITE_FUZZ_TOKENIZER_JSON");
    if (!path) {
      std::fprintf(stderr, "set IGNITE_FUZZ_TOKENIZER_JSON to a BERT tokenizer.json\n");
      std::abort();
    }
    return std::make_unique<ignite::Tokenizer>(ignite::load_tokenizer_json(path, kMaxLength));
  }();
  return *t;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ignite::Tokenizer& t = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::int32_t> ids;
  bool uncertain = false;
  ignite::Tokenizer::Workspace ws;
  const std::size_t n = t.encode(text, ids, uncertain, ws);
  check(ids.size() <= kMaxLength && ids.size() <= n, "kept ids within max_length and count");
  (void)t.words(text);

  // The same bytes split at every '\n' into a batch, over two threads.
  std::vector<std::int64_t> offsets{0};
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') offsets.push_back(static_cast<std::int64_t>(i + 1));
  }
  if (offsets.back() != static_cast<std::int64_t>(size)) offsets.push_back(static_cast<std::int64_t>(size));
  const std::size_t count = offsets.size() - 1;
  const auto batch = t.encode_batch(text.data(), offsets.data(), count, 2);
  check(batch.offsets.size() == count + 1 && batch.offsets.back() == static_cast<std::int64_t>(batch.ids.size()),
        "batch offsets");
  for (std::size_t i = 0; i < count; ++i) {
    std::vector<std::int32_t> one;
    bool u = false;
    const std::size_t c = t.encode(text.substr(static_cast<std::size_t>(offsets[i]),
                                               static_cast<std::size_t>(offsets[i + 1] - offsets[i])),
                                   one, u, ws);
    check(static_cast<std::int64_t>(c) == batch.n_tokens[i], "batch count equals single count");
    check(one.size() == static_cast<std::size_t>(batch.offsets[i + 1] - batch.offsets[i]) &&
              std::equal(one.begin(), one.end(), batch.ids.begin() + batch.offsets[i]),
          "batch ids equal single ids");
  }
  return 0;
}

#ifdef IGNITE_FUZZ_STANDALONE
// Random and mutated inputs for `seconds` (argv[1], default 60): random bytes, random valid
// UTF-8 from assorted ranges, and mutations (flip, insert, delete, splice) of earlier inputs.
int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 60.0;
  std::mt19937_64 rng(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20240611);
  const char* dictionary[] = {"[CLS]", "[MASK]", "[SEP]", "un", "##", "aff", "able", " ", "\n", "\t", "\xE2\x80\x8B",
                              "\xC3\xA9", "e\xCC\x81", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xED\xA0\x80", "\xFF",
                              "\xF0\x9D\x85\xAD\xF0\x9D\x85\xA5", "\xC4\xB0", "!", "\xEF\xBB\xBF"};
  std::vector<std::string> corpus{"hello world", ""};
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::size_t runs = 0;
  while (std::chrono::steady_clock::now() < end) {
    std::string input;
    const auto mode = rng() % 4;
    if (mode == 0) {
      input.resize(rng() % 512);
      for (auto& c : input) c = static_cast<char>(rng());
    } else if (mode == 1) {
      const std::size_t pieces = rng() % 64;
      for (std::size_t i = 0; i < pieces; ++i) {
        if (rng() % 3 == 0) {
          input += dictionary[rng() % (sizeof(dictionary) / sizeof(*dictionary))];
        } else {
          static const std::uint32_t ranges[][2] = {{0x20, 0x7E}, {0x80, 0x24F}, {0x300, 0x36F}, {0x4E00, 0x9FFF},
                                                    {0xAC00, 0xD7A3}, {0x1F300, 0x1FAFF}, {0x0, 0x10FFFF}};
          const auto& r = ranges[rng() % 7];
          std::uint32_t cp = r[0] + static_cast<std::uint32_t>(rng() % (r[1] - r[0] + 1));
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
          char buf[4];
          int n = 0;
          if (cp < 0x80) buf[n++] = static_cast<char>(cp);
          else if (cp < 0x800) { buf[n++] = static_cast<char>(0xC0 | (cp >> 6)); buf[n++] = static_cast<char>(0x80 | (cp & 0x3F)); }
          else if (cp < 0x10000) { buf[n++] = static_cast<char>(0xE0 | (cp >> 12)); buf[n++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); buf[n++] = static_cast<char>(0x80 | (cp & 0x3F)); }
          else { buf[n++] = static_cast<char>(0xF0 | (cp >> 18)); buf[n++] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F)); buf[n++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); buf[n++] = static_cast<char>(0x80 | (cp & 0x3F)); }
          input.append(buf, static_cast<std::size_t>(n));
        }
      }
    } else {
      input = corpus[rng() % corpus.size()];
      const std::size_t edits = 1 + rng() % 8;
      for (std::size_t e = 0; e < edits; ++e) {
        const std::size_t at = input.empty() ? 0 : rng() % (input.size() + 1);
        switch (rng() % 4) {
          case 0: if (!input.empty() && at < input.size()) input[at] = static_cast<char>(input[at] ^ (1 << (rng() % 8))); break;
          case 1: input.insert(at, dictionary[rng() % (sizeof(dictionary) / sizeof(*dictionary))]); break;
          case 2: if (at < input.size()) input.erase(at, 1 + rng() % 4); break;
          default: input.insert(at, corpus[rng() % corpus.size()].substr(0, 64)); break;
        }
      }
    }
    if (input.size() > 4096) input.resize(4096);
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    if (corpus.size() < 4096) corpus.push_back(input);
    else corpus[rng() % corpus.size()] = input;
    ++runs;
  }
  std::printf("fuzz_tokenizer (standalone): %zu inputs in %.0f s, no failure\n", runs, seconds);
  return 0;
}
#endif
