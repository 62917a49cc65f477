// The BERT WordPiece tokenizer as HF tokenizers runs it for one sequence: added tokens are split
// out of the raw text; the rest is normalised (BertNormalizer), split into words
// (BertPreTokenizer) and cut into pieces (WordPiece); the ids are truncated to leave room for
// the special tokens, which the post-processor adds ([CLS] ... [SEP]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/wordpiece.h"

namespace ignite {

// Token ids of many texts: ids of text i are ids[offsets[i], offsets[i+1]).
struct TokenizedBatch {
  std::vector<std::int32_t> ids;
  std::vector<std::int64_t> offsets;   // n + 1
  std::vector<std::int64_t> n_tokens;  // per text, before truncation (special tokens included)
  // Per text: 1 where it holds a code point whose Unicode properties differ between Unicode
  // versions, so that HF tokenizers (other versions) may tokenize it differently.
  std::vector<std::uint8_t> uncertain;
};

// Texts in one UTF-8 arena: text r is bytes[offsets[r], offsets[r+1]).
struct TextArena {
  const char* bytes;
  std::size_t size;             // bytes in the arena
  const std::int64_t* offsets;  // count + 1
  std::size_t count;
};

class Tokenizer {
 public:
  Tokenizer(BertNormalizer normalizer, AddedTokens added, WordPiece model, PostProcessor post,
            std::size_t max_length, std::int32_t pad_id);

  // Per-thread scratch buffers; reuse one across calls on a thread.
  struct Workspace {
    BertPreTokenizer::Words words;
    std::u32string pending;
    std::string prefixed;  // prefix + text, when there is a prefix
  };

  // Appends the truncated ids of `text` (UTF-8; invalid bytes read as U+FFFD) to `out` and
  // returns the count before truncation; sets `uncertain` as TokenizedBatch says.
  std::size_t encode(std::string_view text, std::vector<std::int32_t>& out, bool& uncertain, Workspace& ws) const;

  // Texts i in [0, n) are arena[offsets[i], offsets[i+1]). `threads` 0: hardware concurrency.
  // Work is split into contiguous chunks of about equal bytes.
  TokenizedBatch encode_batch(const char* arena, const std::int64_t* offsets, std::size_t n, unsigned threads) const;

  // Encodes prefix + the text of row rows[i] for i in [0, n) (rows null: rows 0..n-1) straight
  // from the arena, as encode_batch does. InvalidArgument when a row or its offsets fall outside
  // the arena.
  // `ids_arena`: an empty vector whose capacity the result's ids reuse (a recycled one).
  TokenizedBatch encode_rows(const TextArena& texts, const std::int64_t* rows, std::size_t n, std::string_view prefix,
                             unsigned threads, std::vector<std::int32_t> ids_arena = {}) const;

  // The words `text` becomes after normalisation and pre-tokenization, added tokens aside
  // (for checks and debugging).
  std::vector<std::string> words(std::string_view text) const;

  // See BertNormalizer::checkable_code_points and trust.
  std::vector<char32_t> checkable_code_points() const { return normalizer_.checkable_code_points(); }
  void trust(std::vector<char32_t> code_points) { normalizer_.trust(std::move(code_points)); }

  std::size_t max_length() const { return max_length_; }
  std::int32_t pad_id() const { return pad_id_; }
  const BertNormalizer& normalizer() const { return normalizer_; }
  const WordPiece& model() const { return model_; }
  const PostProcessor& post_processor() const { return post_; }

 private:
  // Normalises and pre-tokenizes `text` into ws.words, added tokens in their places.
  void split_words(std::string_view text, Workspace& ws, bool& uncertain) const;

  BertNormalizer normalizer_;
  AddedTokens added_;
  WordPiece model_;
  PostProcessor post_;
  std::size_t max_length_;
  std::size_t limit_;  // sequence tokens kept
  std::int32_t pad_id_;
};

}  // namespace ignite
