// BertNormalizer: clean_text, handle_chinese_chars, strip_accents (NFD, then drop Mn) and
// lowercase, applied in that order as HF tokenizers does, streamed one code point at a time.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/unicode.h"

namespace ignite {

struct BertNormalizerOptions {
  bool clean_text = true;            // drop NUL, U+FFFD and controls; whitespace to ' '
  bool handle_chinese_chars = true;  // spaces around CJK ideographs
  bool strip_accents = true;         // NFD, then drop nonspacing marks (Mn)
  bool lowercase = true;             // full lowercase mapping of each code point
};

class BertNormalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& options);

  const BertNormalizerOptions& options() const { return options_; }

  // Feeds the normalised text of `text` (UTF-8; invalid bytes read as U+FFFD) to
  // sink(code point, property flags), in order. Returns true when `text` holds a code point
  // whose relevant properties depend on the Unicode version (see gen_unicode_tables.py): the
  // result may then differ from HF tokenizers', whose Unicode versions differ from ours.
  template <typename Sink>
  bool normalize(std::string_view text, std::u32string& scratch, Sink&& sink) const;

  // The code points whose properties used here may depend on the Unicode version, less those
  // trusted below, except the unassigned ones (rare in text, and too many to list). In strip
  // mode a code point whose decomposition holds a non-starter that is not Mn is left out: its
  // effect depends on its neighbours (canonical ordering), so no isolated check can clear it.
  std::vector<char32_t> checkable_code_points() const;
  // Stop flagging these code points: the caller checked, one by one, that HF tokenizers treats
  // them as this normaliser and pre-tokenizer do. Call before sharing the normaliser.
  void trust(std::vector<char32_t> code_points);

 private:
  bool trusted(char32_t cp) const { return std::binary_search(trusted_.begin(), trusted_.end(), cp); }

  template <typename Sink>
  void decomposed(char32_t cp, std::u32string& pending, Sink& sink) const;
  template <typename Sink>
  void lowered(char32_t cp, const unicode::CodePointProps& p, Sink& sink) const;
  template <typename Sink>
  void flush(std::u32string& pending, Sink& sink) const;

  BertNormalizerOptions options_;
  std::uint16_t unstable_mask_;
  // What each ASCII byte becomes, in one load: the byte it maps to (-1: dropped) and that
  // byte's property flags.
  struct AsciiMapping {
    std::int16_t mapped;
    std::uint16_t flags;
  };
  std::array<AsciiMapping, 128> ascii_;
  std::uint16_t space_flags_;  // of ' ', which whitespace and CJK ideographs bring
  std::vector<char32_t> trusted_;  // sorted
};

// --- implementation -------------------------------------------------------------------------

template <typename Sink>
bool BertNormalizer::normalize(std::string_view text, std::u32string& pending, Sink&& sink) const {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  bool unstable = false;
  pending.clear();
  while (p < end) {
    if (*p < 0x80) {
      const AsciiMapping m = ascii_[*p++];
      if (m.mapped < 0) continue;  // a dropped control leaves a run of marks unbroken
      if (!pending.empty()) flush(pending, sink);
      sink(static_cast<char32_t>(m.mapped), m.flags);
      // The rest of this ASCII run, most text: nothing is pending any more.
      while (p < end && *p < 0x80) {
        const AsciiMapping a = ascii_[*p++];
        if (a.mapped >= 0) sink(static_cast<char32_t>(a.mapped), a.flags);
      }
      continue;
    }
    char32_t cp = unicode::decode_utf8(p, end);
    const unicode::CodePointProps* props = &unicode::props(cp);
    if ((props->flags & unstable_mask_) && !trusted(cp)) unstable = true;
    if (options_.clean_text) {
      if (cp == 0 || cp == unicode::kReplacement || (props->flags & unicode::kControl)) continue;
      if (props->flags & unicode::kSpace) {
        if (!pending.empty()) flush(pending, sink);
        sink(U' ', space_flags_);
        continue;
      }
    }
    const bool cjk = options_.handle_chinese_chars && (props->flags & unicode::kCjk);
    if (cjk) {
      if (!pending.empty()) flush(pending, sink);
      sink(U' ', space_flags_);
    }
    if (options_.strip_accents) {
      if (props->nfd_len == 0) {
        decomposed(cp, pending, sink);
      } else {
        const char32_t* d = unicode::sequences() + props->nfd_off;
        for (int i = 0; i < props->nfd_len; ++i) decomposed(d[i], pending, sink);
      }
    } else {
      lowered(cp, *props, sink);
    }
    if (cjk) {
      if (!pending.empty()) flush(pending, sink);
      sink(U' ', space_flags_);
    }
  }
  if (!pending.empty()) flush(pending, sink);
  return unstable;
}

// One code point of the decomposed text: canonical ordering reorders runs of non-starters by
// combining class; nonspacing marks are then dropped, so only the other non-starters wait in
// `pending` for their run to end.
template <typename Sink>
void BertNormalizer::decomposed(char32_t cp, std::u32string& pending, Sink& sink) const {
  const unicode::CodePointProps& p = unicode::props(cp);
  if (p.ccc == 0) {
    if (!pending.empty()) flush(pending, sink);
    if (!(p.flags & unicode::kMn)) lowered(cp, p, sink);
  } else if (!(p.flags & unicode::kMn)) {
    pending.push_back(cp);
  }
}

template <typename Sink>
void BertNormalizer::flush(std::u32string& pending, Sink& sink) const {
  // Stable insertion sort by combining class (runs are short).
  for (std::size_t i = 1; i < pending.size(); ++i) {
    const char32_t c = pending[i];
    const auto ccc = unicode::props(c).ccc;
    std::size_t j = i;
    while (j > 0 && unicode::props(pending[j - 1]).ccc > ccc) {
      pending[j] = pending[j - 1];
      --j;
    }
    pending[j] = c;
  }
  for (const char32_t c : pending) lowered(c, unicode::props(c), sink);
  pending.clear();
}

template <typename Sink>
void BertNormalizer::lowered(char32_t cp, const unicode::CodePointProps& p, Sink& sink) const {
  if (!options_.lowercase || p.lower_len == 0) {
    sink(cp, p.flags);
    return;
  }
  const char32_t* l = unicode::sequences() + p.lower_off;
  for (int i = 0; i < p.lower_len; ++i) sink(l[i], unicode::props(l[i]).flags);
}

}  // namespace ignite
