// Lookup into the generated Unicode tables (unicode_tables.inc in the build directory).
#include "tokenizer/unicode.h"

namespace ignite {
namespace unicode {
namespace {
#include "unicode_tables.inc"
}  // namespace

const CodePointProps& props(char32_t cp) {
  if (cp >= 0x110000) return kRecords[0];
  return kRecords[kStage2[static_cast<std::size_t>(kStage1[cp >> 8]) * 256 + (cp & 0xFF)]];
}

const char32_t* sequences() { return kSequences; }

const char* version() { return IGNITE_UNICODE_VERSION; }

bool is_valid_utf8(const char* s, std::size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  const auto* end = p + n;
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const unsigned char* start = p;
    const char32_t cp = decode_utf8(p, end);
    // A genuine U+FFFD is three bytes EF BF BD; a replacement for bad input is not.
    if (cp == kReplacement && !(p - start == 3 && start[0] == 0xEF && start[1] == 0xBF && start[2] == 0xBD)) {
      return false;
    }
  }
  return true;
}

}  // namespace unicode
}  // namespace ignite
