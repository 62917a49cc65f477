// Fuzz target for the image decoders and preprocessing (libFuzzer: LLVMFuzzerTestOneInput). The
// input goes to every decoder directly (JPEG, PNG, WebP, GIF, BMP, whatever its signature says,
// so each library sees hostile bytes) and through the dispatcher and the whole preprocessor in
// exact and fast mode. Checks: no crash, no sanitizer report, every status known, a decoded
// image's size consistent and within the pixel limit, preprocessed values finite.
//
// Built by tests/engine/run_fuzz.sh, with clang's libFuzzer where it exists; with
// IGNITE_FUZZ_STANDALONE it gets its own main() that mutates the seed images in a folder
// (argv[3], written by run_fuzz.sh) and random bytes for a time budget (g++ has no libFuzzer).
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "image/decoders.h"
#include "image/preprocess.h"

namespace {

using ignite::image::Decoded;
using ignite::image::DecodeOptions;
using ignite::image::Status;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz check failed: %s\n", what);
    std::abort();
  }
}

// Small enough that a hostile header cannot make the run allocate gigabytes.
constexpr std::uint64_t kMaxPixels = 4'000'000;

void check_decoded(Status s, const Decoded& d) {
  check(s <= Status::kTooLarge, "known status");
  if (s != Status::kOk) return;
  check(d.image.width > 0 && d.image.height > 0, "positive size");
  check(static_cast<std::uint64_t>(d.image.width) * d.image.height <= kMaxPixels, "within the pixel limit");
  check(d.image.pixels.size() == static_cast<std::size_t>(d.image.width) * d.image.height * 3, "pixel buffer size");
  check(d.orientation >= 1 && d.orientation <= 8, "orientation");
}

const ignite::image::Preprocessor& preprocessor(ignite::image::Mode mode) {
  static const ignite::image::Preprocessor exact(ignite::image::Spec{}, ignite::image::Mode::kExact, kMaxPixels);
  static const ignite::image::Preprocessor fast(ignite::image::Spec{}, ignite::image::Mode::kFast, kMaxPixels);
  return mode == ignite::image::Mode::kFast ? fast : exact;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  DecodeOptions options;
  options.max_pixels = kMaxPixels;
  using Decoder = Status (*)(const std::uint8_t*, std::size_t, const DecodeOptions&, Decoded&);
  for (Decoder decode : {ignite::image::decode_jpeg, ignite::image::decode_png, ignite::image::decode_webp,
                         ignite::image::decode_gif, ignite::image::decode_bmp, ignite::image::decode}) {
    Decoded d;
    check_decoded(decode(data, size, options, d), d);
  }
  std::vector<float> out(preprocessor(ignite::image::Mode::kExact).values_per_image());
  for (auto mode : {ignite::image::Mode::kExact, ignite::image::Mode::kFast}) {
    const Status s = preprocessor(mode).process(data, size, out.data());
    check(s <= Status::kTooLarge, "known preprocess status");
    for (float v : out) check(std::isfinite(v), "finite output");
  }
  return 0;
}

#ifdef IGNITE_FUZZ_STANDALONE
// Mutations of the seed images (argv[3]) and random bytes for `seconds` (argv[1], default 60):
// bit flips, overwritten header bytes, cuts and splices, so decoders get past their signatures
// into damaged headers and data.
int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 60.0;
  std::mt19937_64 rng(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20261202);
  std::vector<std::string> corpus;
  if (argc > 3) {
    for (const auto& entry : std::filesystem::directory_iterator(argv[3])) {
      std::ifstream f(entry.path(), std::ios::binary);
      corpus.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
  }
  corpus.emplace_back();
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::size_t runs = 0;
  while (std::chrono::steady_clock::now() < end) {
    std::string input = corpus[rng() % corpus.size()];
    const std::size_t edits = 1 + rng() % 8;
    for (std::size_t e = 0; e < edits; ++e) {
      const std::size_t at = input.empty() ? 0 : rng() % input.size();
      switch (rng() % 5) {
        case 0: if (!input.empty()) input[at] = static_cast<char>(input[at] ^ (1 << (rng() % 8))); break;
        case 1: if (!input.empty()) input[rng() % std::min<std::size_t>(input.size(), 64)] = static_cast<char>(rng()); break;
        case 2: input.resize(at); break;
        case 3: { const std::string& other = corpus[rng() % corpus.size()];
                  if (!other.empty()) input.insert(at, other, rng() % other.size(), 1 + rng() % 64); } break;
        default: input.push_back(static_cast<char>(rng())); break;
      }
    }
    if (input.size() > 65536) input.resize(65536);
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
    if (corpus.size() < 1024) corpus.push_back(input);
    ++runs;
  }
  std::printf("fuzz_image (standalone): %zu inputs in %.0f s, no failure\n", runs, seconds);
  return 0;
}
#endif
