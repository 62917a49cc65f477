#include "tokenizer/normalizer.h"

namespace ignite {

BertNormalizer::BertNormalizer(const BertNormalizerOptions& options) : options_(options) {
  // Only the properties this configuration uses make a text's result version-dependent.
  unstable_mask_ = unicode::kUnstableSpace | unicode::kUnstablePunct;
  if (options_.clean_text) unstable_mask_ |= unicode::kUnstableControl;
  if (options_.strip_accents) unstable_mask_ |= unicode::kUnstableMark | unicode::kUnassigned;
  if (options_.lowercase) unstable_mask_ |= unicode::kUnstableLower | unicode::kUnassigned;
  space_flags_ = unicode::props(U' ').flags;
  for (int c = 0; c < 128; ++c) {
    const auto& p = unicode::props(static_cast<char32_t>(c));
    int mapped = c;
    if (options_.clean_text) {
      if (c == 0 || (p.flags & unicode::kControl)) mapped = -1;
      else if (p.flags & unicode::kSpace) mapped = ' ';
    }
    if (mapped >= 0 && options_.lowercase && p.lower_len == 1) mapped = static_cast<int>(unicode::sequences()[p.lower_off]);
    ascii_[c].mapped = static_cast<std::int16_t>(mapped);
    ascii_[c].flags = mapped >= 0 ? unicode::props(static_cast<char32_t>(mapped)).flags : 0;
  }
}

}  // namespace ignite

namespace ignite {

std::vector<char32_t> BertNormalizer::checkable_code_points() const {
  std::vector<char32_t> out;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const unicode::CodePointProps& p = unicode::props(cp);
    if (!(p.flags & unstable_mask_) || (p.flags & unicode::kUnassigned) || trusted(cp)) continue;
    if (options_.strip_accents) {
      bool reorders = false;
      const char32_t* d = unicode::sequences() + p.nfd_off;
      const int n = p.nfd_len ? p.nfd_len : 1;
      for (int i = 0; i < n; ++i) {
        const auto& q = unicode::props(p.nfd_len ? d[i] : cp);
        if (q.ccc != 0 && !(q.flags & unicode::kMn)) reorders = true;
      }
      if (reorders) continue;
    }
    out.push_back(cp);
  }
  return out;
}

void BertNormalizer::trust(std::vector<char32_t> code_points) {
  trusted_.insert(trusted_.end(), code_points.begin(), code_points.end());
  std::sort(trusted_.begin(), trusted_.end());
  trusted_.erase(std::unique(trusted_.begin(), trusted_.end()), trusted_.end());
}

}  // namespace ignite
