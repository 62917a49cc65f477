#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include "core/error.h"
#include "core/reserve.h"

namespace ignite {

Tokenizer::Tokenizer(BertNormalizer normalizer, AddedTokens added, WordPiece model, PostProcessor post,
                     std::size_t max_length, std::int32_t pad_id)
    : normalizer_(std::move(normalizer)),
      added_(std::move(added)),
      model_(std::move(model)),
      post_(std::move(post)),
      max_length_(max_length),
      limit_(post_.sequence_limit(max_length)),
      pad_id_(pad_id) {}

namespace {
// How many words ahead of the one being cut into pieces the model's first lookup is prefetched:
// enough to cover a cache miss with the work on the words in between.
constexpr std::size_t kPrefetchAhead = 8;
constexpr std::size_t kWorkspaceKeepBytes = std::size_t{4} << 20;  // a thread keeps its word buffers up to this
static_assert(BertPreTokenizer::Words::kPadding >= VocabMap::kPadding, "lookups read past a word's end");
}  // namespace

void Tokenizer::split_words(std::string_view text, Workspace& ws, bool& uncertain) const {
  auto& words = ws.words;
  words.clear();
  auto on_text = [&](std::string_view piece) {
    if (normalizer_.normalize(piece, ws.pending, [&](char32_t cp, std::uint16_t flags) { words.push(cp, flags); })) {
      uncertain = true;
    }
    words.end_word();
  };
  added_.split(text, on_text, [&](std::int32_t id) { words.push_token(id); });
  words.done();
}

std::size_t Tokenizer::encode(std::string_view text, std::vector<std::int32_t>& out, bool& uncertain,
                              Workspace& ws) const {
  // First the whole text into words, then the words into pieces: the pieces' lookups (a cache
  // miss each, often) are prefetched a few words ahead.
  split_words(text, ws, uncertain);
  const auto& items = ws.words.items();
  const char* bytes = ws.words.bytes();
  // The first lookups of the next kPrefetchAhead words, computed as they were prefetched.
  std::array<WordPiece::FirstLookup, kPrefetchAhead> ahead;
  auto prefetch = [&](std::size_t i) {
    if (i < items.size() && items[i].token < 0) {
      ahead[i % kPrefetchAhead] = model_.prefetch(bytes + items[i].begin, items[i].size);
    }
  };
  for (std::size_t i = 0; i < kPrefetchAhead; ++i) prefetch(i);

  out.insert(out.end(), post_.prefix().begin(), post_.prefix().end());
  const std::size_t first = out.size();
  std::size_t count = 0;  // sequence tokens, truncated or not
  // Invariant: out holds first + min(count, limit_) ids before each item; past limit_ the
  // ids are only counted.
  for (std::size_t i = 0; i < items.size(); ++i) {
    const WordPiece::FirstLookup lookup = ahead[i % kPrefetchAhead];
    prefetch(i + kPrefetchAhead);  // reuses the slot just read
    const auto& item = items[i];
    const std::size_t before = out.size();
    if (item.token >= 0) out.push_back(item.token);
    else model_.tokenize_padded(bytes + item.begin, item.size, item.n_chars, out, &lookup);
    count += out.size() - before;
    if (count > limit_) out.resize(first + limit_);
  }
  out.insert(out.end(), post_.suffix().begin(), post_.suffix().end());
  ws.words.trim(kWorkspaceKeepBytes);
  return count + post_.added();
}

std::vector<std::string> Tokenizer::words(std::string_view text) const {
  Workspace ws;
  ws.words.clear();
  normalizer_.normalize(text, ws.pending, [&](char32_t cp, std::uint16_t flags) { ws.words.push(cp, flags); });
  ws.words.done();
  std::vector<std::string> out;
  for (const auto& item : ws.words.items()) out.emplace_back(ws.words.word(item));
  return out;
}

TokenizedBatch Tokenizer::encode_batch(const char* arena, const std::int64_t* offsets, std::size_t n,
                                       unsigned threads) const {
  const TextArena texts{arena, static_cast<std::size_t>(std::max<std::int64_t>(offsets[n], 0)), offsets, n};
  return encode_rows(texts, nullptr, n, {}, threads);
}

TokenizedBatch Tokenizer::encode_rows(const TextArena& texts, const std::int64_t* rows, std::size_t n,
                                      std::string_view prefix, unsigned threads,
                                      std::vector<std::int32_t> ids_arena) const {
  auto row_of = [&](std::size_t i) { return rows ? rows[i] : static_cast<std::int64_t>(i); };
  ids_arena.clear();
  // Every span is checked before a thread reads the arena; cum[i] is the bytes (prefixes
  // included) of the texts before text i, to split the work.
  std::vector<std::int64_t> cum(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t r = row_of(i);
    if (r < 0 || static_cast<std::uint64_t>(r) >= texts.count) {
      throw InvalidArgument("encode: row " + std::to_string(r) + " is outside the " + std::to_string(texts.count) +
                            " texts");
    }
    const std::int64_t lo = texts.offsets[r], hi = texts.offsets[r + 1];
    if (lo < 0 || hi < lo || static_cast<std::uint64_t>(hi) > texts.size) {
      throw InvalidArgument("encode: text " + std::to_string(r) + " spans bytes [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "), outside the arena's " + std::to_string(texts.size));
    }
    cum[i + 1] = cum[i] + static_cast<std::int64_t>(prefix.size()) + (hi - lo);
  }
  TokenizedBatch result;
  result.offsets.assign(n + 1, 0);
  result.n_tokens.assign(n, 0);
  result.uncertain.assign(n, 0);
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const auto total_bytes = static_cast<std::size_t>(cum[n]);
  // At least ~64 KiB of text per thread, or the threads cost more than they save.
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(1, total_bytes / 65536)));
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(1, n)));

  // Contiguous chunks of about equal bytes: chunk t is texts [bounds[t], bounds[t+1]).
  std::vector<std::size_t> bounds(threads + 1, n);
  bounds[0] = 0;
  for (unsigned t = 1; t < threads; ++t) {
    const auto target = static_cast<std::int64_t>(total_bytes * t / threads);
    bounds[t] = static_cast<std::size_t>(std::lower_bound(cum.begin(), cum.begin() + static_cast<std::ptrdiff_t>(n),
                                                          target) - cum.begin());
    bounds[t] = std::max(bounds[t], bounds[t - 1]);
  }
  std::vector<std::vector<std::int32_t>> chunk_ids(threads);
  std::vector<std::exception_ptr> errors(threads);
  auto work = [&](unsigned t) {
    try {
      Workspace ws;
      // A local vector, moved out at the end: the chunk_ids headers share a cache line, and
      // every push_back writes its end pointer (false sharing between the threads).
      std::vector<std::int32_t> ids;
      if (threads == 1) ids = std::move(ids_arena);  // it becomes the result's, uncopied
      const std::size_t lo = bounds[t], hi = bounds[t + 1];
      reserve_reusable(ids, static_cast<std::size_t>(cum[hi] - cum[lo]) / 4 + (hi - lo) * (post_.added() + 1));
      for (std::size_t i = lo; i < hi; ++i) {
        const std::int64_t r = row_of(i);
        const std::int64_t lo_byte = texts.offsets[r];
        std::string_view text(texts.bytes + lo_byte, static_cast<std::size_t>(texts.offsets[r + 1] - lo_byte));
        if (!prefix.empty()) {
          ws.prefixed.assign(prefix);
          ws.prefixed.append(text);
          text = ws.prefixed;
        }
        bool uncertain = false;
        const std::size_t before = ids.size();
        result.n_tokens[i] = static_cast<std::int64_t>(encode(text, ids, uncertain, ws));
        result.offsets[i + 1] = static_cast<std::int64_t>(ids.size() - before);  // a length for now
        result.uncertain[i] = uncertain ? 1 : 0;
      }
      chunk_ids[t] = std::move(ids);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  if (threads == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    try {
      for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
    } catch (...) {
      for (auto& th : pool) th.join();  // they use this frame's state
      throw;
    }
    work(0);
    for (auto& th : pool) th.join();
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  for (std::size_t i = 0; i < n; ++i) result.offsets[i + 1] += result.offsets[i];
  if (threads == 1) {
    result.ids = std::move(chunk_ids[0]);
    return result;
  }
  result.ids = std::move(ids_arena);
  result.ids.resize(static_cast<std::size_t>(result.offsets[n]));
  std::size_t at = 0;
  for (const auto& ids : chunk_ids) {
    if (!ids.empty()) std::memcpy(result.ids.data() + at, ids.data(), ids.size() * sizeof(std::int32_t));
    at += ids.size();
  }
  return result;
}

}  // namespace ignite
