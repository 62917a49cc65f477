// BertPreTokenizer: splits normalised text into words on whitespace (removed) and around each
// punctuation code point (kept as a word of its own), streamed one code point at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/unicode.h"

namespace ignite {

class BertPreTokenizer {
 public:
  // The words of one text, collected whole before any is cut into pieces, so that the model
  // can look a word up while the lookups of the words after it are already on their way from
  // memory (see Tokenizer::encode). Reuse one across texts to keep its buffers.
  class Words {
   public:
    // A word (bytes [begin, begin + size) of bytes()), or an added token between words.
    struct Item {
      std::size_t begin;
      std::size_t size;
      std::size_t n_chars;  // code points
      std::int32_t token;     // an added token's id; -1 for a word
    };

    // Readable bytes after the last word's end once done() was called: lookups may load whole
    // 8-byte words past a word's end.
    static constexpr std::size_t kPadding = 8;

    void clear() {
      size_ = 0;
      items_.clear();
      begin_ = 0;
      chars_ = 0;
    }

    // Takes the next code point and its property flags.
    void push(char32_t cp, std::uint16_t flags) {
      if (!(flags & (unicode::kSpace | unicode::kPunct))) {  // the common case first
        if (cp < 0x80) put(static_cast<char>(cp));
        else put_utf8(cp);
        ++chars_;
      } else if (flags & unicode::kSpace) {
        end_word();
      } else {
        end_word();
        put_utf8(cp);
        chars_ = 1;
        end_word();
      }
    }

    // Ends the current word, if any (the end of a stretch of text).
    void end_word() {
      if (chars_ == 0) return;
      items_.push_back(Item{begin_, size_ - begin_, chars_, -1});
      begin_ = size_;
      chars_ = 0;
    }

    // An added token after the words so far (ends the current word).
    void push_token(std::int32_t id) {
      end_word();
      items_.push_back(Item{begin_, 0, 0, id});
    }

    // Ends the text: completes the last word and pads the bytes.
    void done() {
      end_word();
      for (std::size_t i = 0; i < kPadding; ++i) put('\0');
    }

    // Frees the buffers when they hold more than `keep` bytes: one huge text (a whole book on
    // one line) must not leave every tokenizer thread holding its size for the rest of the run.
    void trim(std::size_t keep) {
      if (bytes_.capacity() + items_.capacity() * sizeof(Item) <= keep) return;
      std::vector<char>().swap(bytes_);
      std::vector<Item>().swap(items_);
      clear();
    }

    const std::vector<Item>& items() const { return items_; }
    const char* bytes() const { return bytes_.data(); }
    std::string_view word(const Item& item) const { return {bytes_.data() + item.begin, item.size}; }

   private:
    // One byte at a time into a buffer that only grows: cheaper than std::string::push_back,
    // which also keeps a terminating NUL and checks for its small-string form.
    void put(char c) {
      if (size_ == bytes_.size()) bytes_.resize(bytes_.size() * 2 + 256);
      bytes_[size_++] = c;
    }
    void put_utf8(char32_t cp) {
      char buf[4];
      const std::size_t n = unicode::encode_utf8(cp, buf);
      for (std::size_t i = 0; i < n; ++i) put(buf[i]);
    }

    std::vector<char> bytes_;  // [0, size_) in use
    std::size_t size_ = 0;
    std::vector<Item> items_;
    std::size_t begin_ = 0;  // of the current word
    std::size_t chars_ = 0;    // of the current word
  };
};

}  // namespace ignite
