// Unicode properties of code points for the BERT pipeline, from tables generated at build time
// from Python's unicodedata (gen_unicode_tables.py), plus UTF-8 decoding and encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ignite {
namespace unicode {

// Property bits of a code point (see gen_unicode_tables.py for their exact definitions).
enum : std::uint16_t {
  kControl = 1,     // Cc, Cf or Co, except \t \n \r: dropped by clean_text
  kSpace = 2,       // White_Space
  kPunct = 4,       // BERT punctuation: ASCII 33-47, 58-64, 91-96, 123-126, or P*
  kMn = 8,          // nonspacing mark: dropped by strip_accents after NFD
  kCjk = 16,        // CJK ideograph ranges of handle_chinese_chars
  // Set where the property may differ between Unicode versions (HF tokenizers uses others).
  kUnstableControl = 32,
  kUnstableSpace = 64,
  kUnstablePunct = 128,
  kUnstableMark = 256,   // Mn, combining class or decomposition
  kUnstableLower = 512,  // lowercase mapping
  kUnassigned = 1024,    // unassigned in this Unicode version
};

struct CodePointProps {
  std::uint16_t flags;
  std::uint8_t ccc;        // canonical combining class
  std::uint8_t lower_len;  // code points of the lowercase mapping; 0: maps to itself
  std::uint8_t nfd_len;    // code points of the full canonical decomposition; 0: none
  std::uint16_t lower_off; // into sequences()
  std::uint16_t nfd_off;
};

// Properties of `cp` (< 0x110000; surrogates get the record of an unassigned code point).
const CodePointProps& props(char32_t cp);
// The concatenated lowercase and decomposition sequences that CodePointProps index.
const char32_t* sequences();
// The Unicode version of the tables, e.g. "14.0.0".
const char* version();

inline constexpr char32_t kReplacement = 0xFFFD;

// Decodes one code point from [p, end) (p < end) and advances p. Invalid UTF-8 (a stray or
// missing continuation byte, an overlong form, a surrogate, a value above U+10FFFF) decodes
// to U+FFFD, one per maximal invalid subpart, as Python's errors="replace" does.
inline char32_t decode_utf8(const unsigned char*& p, const unsigned char* end) {
  const unsigned char b0 = *p;
  if (b0 < 0x80) {
    ++p;
    return b0;
  }
  int need;
  char32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    ++p;
    return kReplacement;
  }
  const unsigned char* q = p + 1;
  for (int i = 0; i < need; ++i, ++q) {
    if (q >= end) {
      p = q;
      return kReplacement;
    }
    const unsigned char b = *q;
    if (b < lo || b > hi) {
      p = q;  // the offending byte starts the next code point
      return kReplacement;
    }
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  p = q;
  return cp;
}

// Writes the UTF-8 of `cp` to out[0..4) and returns its length.
inline std::size_t encode_utf8(char32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

inline void append_utf8(std::string& out, char32_t cp) {
  char buf[4];
  out.append(buf, encode_utf8(cp, buf));
}

// Whether `s` is valid UTF-8 (what decode_utf8 would decode without a replacement).
bool is_valid_utf8(const char* s, std::size_t n);

}  // namespace unicode
}  // namespace ignite
