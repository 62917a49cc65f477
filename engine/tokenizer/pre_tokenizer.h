// BertPreTokenizer: splits normalised text into words on whitespace (removed) and around each
// punctuation code point (kept as a word of its own), streamed one code point at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/unicode.h"

namespace ignite {

class BertPreTokenizer {
 public:
  // The state of one text being split; reuse it across texts to keep its buffer.
  class Splitter {
   public:
    // Takes the next code point and its property flags; calls on_word(word, n_code_points)
    // for each word it completes.
    template <typename OnWord>
    void push(char32_t cp, std::uint16_t flags, OnWord&& on_word) {
      if (flags & unicode::kSpace) {
        finish(on_word);
      } else if (flags & unicode::kPunct) {
        finish(on_word);
        unicode::append_utf8(word_, cp);
        chars_ = 1;
        finish(on_word);
      } else {
        if (cp < 0x80) word_.push_back(static_cast<char>(cp));
        else unicode::append_utf8(word_, cp);
        ++chars_;
      }
    }

    // Ends the text: completes the last word.
    template <typename OnWord>
    void finish(OnWord&& on_word) {
      if (chars_ == 0) return;
      on_word(std::string_view(word_), chars_);
      word_.clear();
      chars_ = 0;
    }

   private:
    std::string word_;
    std::size_t chars_ = 0;
  };
};

}  // namespace ignite
