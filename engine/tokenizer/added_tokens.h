// Added tokens (special tokens such as [CLS], [MASK]): matched in the raw text before
// normalisation, leftmost-longest, each becoming its own id; the text between them goes through
// the normal pipeline. Only tokens that are matched verbatim (normalized, lstrip, rstrip and
// single_word all false) are supported.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ignite {

class AddedTokens {
 public:
  AddedTokens() = default;
  // Throws InvalidArgument on an empty content.
  explicit AddedTokens(std::vector<std::pair<std::string, std::int32_t>> tokens);

  bool empty() const { return tokens_.empty(); }

  // Calls on_text(piece) for each stretch of text between matches (possibly empty pieces are
  // skipped) and on_token(id) for each match, in order.
  template <typename OnText, typename OnToken>
  void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
    if (tokens_.empty()) {
      if (!text.empty()) on_text(text);
      return;
    }
    std::size_t prev = 0;
    std::size_t i = 0;
    while (i < text.size()) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (!first_byte_[c]) {
        ++i;
        continue;
      }
      std::size_t best_len = 0;
      std::int32_t best_id = -1;
      for (const auto& [content, id] : tokens_) {
        if (content.size() > best_len && text.size() - i >= content.size() &&
            text.compare(i, content.size(), content) == 0) {
          best_len = content.size();
          best_id = id;
        }
      }
      if (best_len == 0) {
        ++i;
        continue;
      }
      if (i > prev) on_text(text.substr(prev, i - prev));
      on_token(best_id);
      i += best_len;
      prev = i;
    }
    if (prev < text.size()) on_text(text.substr(prev));
  }

 private:
  std::vector<std::pair<std::string, std::int32_t>> tokens_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace ignite
