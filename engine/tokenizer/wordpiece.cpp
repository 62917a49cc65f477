#include "tokenizer/wordpiece.h"

#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace ignite {

namespace {
inline bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

inline std::uint64_t load_tail(const char* s, std::size_t n) {
  std::uint64_t v = 0;
  std::memcpy(&v, s, n);
  return v;
}
}  // namespace

std::uint64_t VocabMap::hash(const char* s, std::size_t n) {
  // Multiply-xorshift over 8-byte words, seeded with the length.
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = 0x243F6A8885A308D3ull ^ (n * kMul);
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, s, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 32;
    s += 8;
    n -= 8;
  }
  if (n) {
    h = (h ^ load_tail(s, n)) * kMul;
    h ^= h >> 32;
  }
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 29;
  return h;
}

void VocabMap::build(const std::vector<std::pair<std::string_view, std::int32_t>>& entries) {
  std::size_t cap = 16;
  while (cap < entries.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  keys_.clear();
  count_ = 0;
  max_key_ = 0;
  for (const auto& [key, id] : entries) {
    const std::uint64_t h = hash(key.data(), key.size());
    std::size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s.hash = static_cast<std::uint32_t>(h >> 32);
        s.len = static_cast<std::uint32_t>(key.size());
        s.off = static_cast<std::uint32_t>(keys_.size());
        s.id = id;
        keys_.append(key);
        ++count_;
        if (key.size() > max_key_) max_key_ = key.size();
        break;
      }
      if (s.hash == static_cast<std::uint32_t>(h >> 32) && s.len == key.size() &&
          std::memcmp(keys_.data() + s.off, key.data(), key.size()) == 0) {
        s.id = id;  // a repeated key: the last one wins, as when deserialising a map
        break;
      }
    }
  }
}

std::int32_t VocabMap::find(std::string_view key) const {
  if (key.size() > max_key_) return -1;
  const std::uint64_t h = hash(key.data(), key.size());
  const auto tag = static_cast<std::uint32_t>(h >> 32);
  for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.hash == tag && s.len == key.size() && std::memcmp(keys_.data() + s.off, key.data(), key.size()) == 0) {
      return s.id;
    }
  }
}

WordPiece::WordPiece(const WordPieceOptions& options) : max_chars_(options.max_input_chars_per_word) {
  std::vector<std::pair<std::string_view, std::int32_t>> all, cont;
  all.reserve(options.vocab.size());
  const std::string_view prefix = options.continuing_subword_prefix;
  for (const auto& [token, id] : options.vocab) {
    if (id < 0) throw InvalidArgument("WordPiece vocabulary has a negative id for '" + token + "'");
    all.emplace_back(token, id);
    if (std::string_view(token).substr(0, prefix.size()) == prefix) {
      cont.emplace_back(std::string_view(token).substr(prefix.size()), id);
    }
  }
  whole_.build(all);
  continuation_.build(cont);
  unk_id_ = whole_.find(options.unk_token);
  if (unk_id_ < 0) throw InvalidArgument("WordPiece unk_token '" + options.unk_token + "' is not in the vocabulary");
}

std::optional<std::int32_t> WordPiece::token_id(std::string_view token) const {
  const std::int32_t id = whole_.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

void WordPiece::tokenize(std::string_view word, std::size_t n_chars, std::vector<std::int32_t>& out) const {
  if (n_chars > max_chars_) {
    out.push_back(unk_id_);
    return;
  }
  const std::size_t mark = out.size();
  const std::size_t n = word.size();
  std::size_t start = 0;
  while (start < n) {
    const VocabMap& map = start == 0 ? whole_ : continuation_;
    // No piece is longer than the map's longest key: start there, on a code point boundary.
    std::size_t end = std::min(n, start + map.max_key_bytes());
    while (end > start && end < n && is_continuation_byte(word[end])) --end;
    std::int32_t id = -1;
    while (end > start) {
      id = map.find(word.substr(start, end - start));
      if (id >= 0) break;
      --end;
      while (end > start && is_continuation_byte(word[end])) --end;
    }
    if (id < 0) {
      out.resize(mark);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(id);
    start = end;
  }
}

}  // namespace ignite
