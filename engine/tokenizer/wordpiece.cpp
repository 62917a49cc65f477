#include "tokenizer/wordpiece.h"

#include <cstring>
#include <algorithm>

#include "core/error.h"

namespace ignite {

namespace {
inline bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

inline std::uint64_t load8(const char* s) {
  std::uint64_t v;
  std::memcpy(&v, s, 8);
  return v;
}

// The low n bytes (n in 1..8) of a little-endian load: what belongs to the key.
inline std::uint64_t low_bytes(std::uint64_t v, std::size_t n) {
  return n >= 8 ? v : v & ((std::uint64_t{1} << (8 * n)) - 1);
}

// A key copied with VocabMap::kPadding zero bytes after it, for find_padded and hash_padded.
std::string padded(std::string_view key) {
  std::string s(key);
  s.append(VocabMap::kPadding, '\0');
  return s;
}
}  // namespace

std::uint64_t VocabMap::hash_padded(const char* s, std::size_t n) {
  // Multiply-xorshift over 8-byte words (the last one zero-filled), seeded with the length.
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = 0x243F6A8885A308D3ull ^ (n * kMul);
  for (std::size_t i = 0; i < n; i += 8) {
    h = (h ^ low_bytes(load8(s + i), n - i)) * kMul;
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
  tail_off_.assign(cap, 0);
  mask_ = cap - 1;
  // About 16 bits per key: a miss passes the filter ~6% of the time, and the filter (64 KiB
  // for a 30k vocabulary) stays in L2 where the slots (1 MiB) would not.
  std::size_t bloom_bits = 512;
  while (bloom_bits < entries.size() * 16) bloom_bits <<= 1;
  bloom_.assign(bloom_bits / 64, 0);
  bloom_mask_ = bloom_bits - 1;
  keys_.clear();
  count_ = 0;
  max_key_ = 0;
  for (const auto& [key, id] : entries) {
    const std::string k = padded(key);
    const std::uint64_t h = hash_padded(k.data(), key.size());
    const std::uint64_t head = low_bytes(load8(k.data()), key.size());
    std::size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s.head = head;
        s.len = static_cast<std::uint32_t>(key.size());
        s.id = id;
        if (key.size() > 8) {
          tail_off_[i] = static_cast<std::uint32_t>(keys_.size());
          keys_.append(key.substr(8));
        }
        const std::uint64_t bit = (h >> 32) & bloom_mask_;
        bloom_[bit >> 6] |= std::uint64_t{1} << (bit & 63);
        ++count_;
        if (key.size() > max_key_) max_key_ = key.size();
        break;
      }
      if (s.head == head && s.len == key.size() &&
          (key.size() <= 8 || std::memcmp(keys_.data() + tail_off_[i], key.data() + 8, key.size() - 8) == 0)) {
        s.id = id;  // a repeated key: the last one wins, as when deserialising a map
        break;
      }
    }
  }
  keys_.append(kPadding, '\0');
}

std::int32_t VocabMap::find(std::string_view key) const {
  if (key.size() > max_key_) return -1;
  char stack[64 + kPadding] = {};
  if (key.size() <= 64) {
    if (!key.empty()) std::memcpy(stack, key.data(), key.size());  // data() may be null
    return find_padded(stack, key.size(), false);
  }
  const std::string k = padded(key);
  return find_padded(k.data(), key.size(), false);
}

std::int32_t VocabMap::find_hashed(const char* key, std::size_t n, std::uint64_t h, bool likely_miss) const {
  if (n > max_key_) return -1;
  if (likely_miss && !maybe_has(h)) return -1;
  const std::uint64_t head = low_bytes(load8(key), n);
  for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id < 0) return -1;
    if (s.head != head || s.len != n) continue;
    if (n <= 8) return s.id;  // the head was the whole key: no need to touch tail_off_
    // Bytes 8.. of a longer key, compared 8 at a time (keys_ ends with kPadding zeros).
    const char* tail = keys_.data() + tail_off_[i];
    bool same = true;
    for (std::size_t j = 8; j < n && same; j += 8) {
      same = low_bytes(load8(key + j) ^ load8(tail + j - 8), n - j) == 0;
    }
    if (same) return s.id;
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

std::size_t WordPiece::first_end(const char* word, std::size_t n, std::size_t start, const VocabMap& map) {
  std::size_t end = std::min(n, start + map.max_key_bytes());
  while (end > start && end < n && is_continuation_byte(word[end])) --end;
  return end;
}

WordPiece::FirstLookup WordPiece::prefetch(const char* word, std::size_t n) const {
  FirstLookup first;
  first.end = first_end(word, n, 0, whole_);
  first.hash = VocabMap::hash_padded(word, first.end);
  whole_.prefetch(first.hash);
  return first;
}

void WordPiece::tokenize(std::string_view word, std::size_t n_chars, std::vector<std::int32_t>& out) const {
  if (n_chars > max_chars_) {
    out.push_back(unk_id_);
    return;
  }
  // The candidates are looked up in place (find_padded), so the word gets padding after it: on
  // the stack for all but very long words.
  constexpr std::size_t kStack = 256;
  char stack[kStack + VocabMap::kPadding];
  std::string heap;
  char* w = stack;
  const std::size_t n = word.size();
  if (n > kStack) {
    heap.resize(n + VocabMap::kPadding);
    w = heap.data();
  }
  if (n) std::memcpy(w, word.data(), n);  // data() may be null when empty
  std::memset(w + n, 0, VocabMap::kPadding);
  tokenize_padded(w, n, n_chars, out);
}

void WordPiece::tokenize_padded(const char* w, std::size_t n, std::size_t n_chars, std::vector<std::int32_t>& out,
                                const FirstLookup* first) const {
  if (n_chars > max_chars_) {
    out.push_back(unk_id_);
    return;
  }
  const std::size_t mark = out.size();
  std::size_t start = 0;
  while (start < n) {
    const VocabMap& map = start == 0 ? whole_ : continuation_;
    // No piece is longer than the map's longest key: start there, on a code point boundary.
    const bool known = start == 0 && first;
    std::size_t end = known ? first->end : first_end(w, n, start, map);
    std::int32_t id = -1;
    // The longest candidate is a hit more often than not (most words are whole vocabulary
    // tokens); the shorter ones, tried after a miss, mostly miss.
    bool likely_miss = false;
    while (end > start) {
      id = known && !likely_miss ? map.find_hashed(w, end, first->hash, false)
                                 : map.find_padded(w + start, end - start, likely_miss);
      if (id >= 0) break;
      likely_miss = true;
      --end;
      while (end > start && is_continuation_byte(w[end])) --end;
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
