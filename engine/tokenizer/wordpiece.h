// WordPiece model: greedy longest-match-first split of a word into vocabulary pieces, later
// pieces looked up with the continuing-subword prefix ("##"); a word longer than
// max_input_chars_per_word, or with a part no piece matches, becomes the unknown token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ignite {

// Open-addressing hash map from byte strings to token ids; immutable once built.
//
// Lookups are the tokenizer's hot loop (greedy longest match tries many candidate lengths, most
// of which miss), so the layout is for cache misses: a small Bloom filter answers most misses
// without touching the slots, and each slot holds its key's first 8 bytes, so a key of up to 8
// bytes (most of a BERT vocabulary) is compared in a register, without a second memory access.
class VocabMap {
 public:
  // Bytes a caller of find_padded must be able to read past the key's end.
  static constexpr std::size_t kPadding = 8;

  void build(const std::vector<std::pair<std::string_view, std::int32_t>>& entries);
  // The id of `key`, or -1.
  std::int32_t find(std::string_view key) const;
  // find() for a key whose storage is readable for kPadding bytes past its end (the bytes there
  // are ignored): no copy and whole-word loads. `likely_miss`: ask the Bloom filter first, which
  // saves the slots' cache miss on a miss but costs a load of its own on a hit.
  std::int32_t find_padded(const char* key, std::size_t n, bool likely_miss) const {
    return find_hashed(key, n, hash_padded(key, n), likely_miss);
  }
  // find_padded() with h = hash_padded(key, n) computed already.
  std::int32_t find_hashed(const char* key, std::size_t n, std::uint64_t h, bool likely_miss) const;
  // Starts loading the slot that find_padded(key, n, false) reads first; `h` = hash_padded(key, n).
  void prefetch(std::uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }
  std::size_t max_key_bytes() const { return max_key_; }
  std::size_t size() const { return count_; }

  // Hash of the n bytes at s; reads up to kPadding - 1 bytes past them.
  static std::uint64_t hash_padded(const char* s, std::size_t n);

 private:
  struct Slot {
    std::uint64_t head = 0;  // first 8 bytes of the key, zero-filled
    std::uint32_t len = 0;
    std::int32_t id = -1;  // -1: empty
  };
  bool maybe_has(std::uint64_t h) const {
    const std::uint64_t bit = (h >> 32) & bloom_mask_;
    return (bloom_[bit >> 6] >> (bit & 63)) & 1;
  }

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> tail_off_;  // per slot: where bytes 8.. of a longer key are in keys_
  std::string keys_;                     // tails of keys longer than 8 bytes, then kPadding zeros
  std::vector<std::uint64_t> bloom_;     // one bit per key, set at bit (hash >> 32) & bloom_mask_
  std::size_t mask_ = 0;
  std::uint64_t bloom_mask_ = 0;
  std::size_t max_key_ = 0;
  std::size_t count_ = 0;
};

struct WordPieceOptions {
  std::vector<std::pair<std::string, std::int32_t>> vocab;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
};

class WordPiece {
 public:
  // Throws InvalidArgument when unk_token is not in the vocabulary.
  explicit WordPiece(const WordPieceOptions& options);

  // Appends the ids of `word` (n_chars code points) to `out`.
  void tokenize(std::string_view word, std::size_t n_chars, std::vector<std::int32_t>& out) const;
  // The first lookup of a word, the whole word or its longest prefix the vocabulary could hold.
  struct FirstLookup {
    std::size_t end = 0;       // bytes
    std::uint64_t hash = 0;    // VocabMap::hash_padded of them
  };
  // tokenize() for a word whose storage is readable for VocabMap::kPadding bytes past its end;
  // `first`, when given, is what prefetch() returned for it.
  void tokenize_padded(const char* word, std::size_t n, std::size_t n_chars, std::vector<std::int32_t>& out,
                       const FirstLookup* first = nullptr) const;
  // Starts loading what tokenize_padded will read first for this word (same contract), so that
  // the memory latency of looking up one word overlaps the work on the words before it.
  FirstLookup prefetch(const char* word, std::size_t n) const;

  std::int32_t unk_id() const { return unk_id_; }
  // The id of a vocabulary token, or nullopt.
  std::optional<std::int32_t> token_id(std::string_view token) const;
  std::size_t vocab_size() const { return whole_.size(); }

 private:
  // The first candidate piece at `start`: the longest the map could hold, on a code point
  // boundary.
  static std::size_t first_end(const char* word, std::size_t n, std::size_t start, const VocabMap& map);

  VocabMap whole_;         // every token, looked up at the start of a word
  VocabMap continuation_;  // tokens that start with the prefix, keyed without it
  std::int32_t unk_id_ = -1;
  std::size_t max_chars_;
};

}  // namespace ignite
