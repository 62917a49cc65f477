// Optimisation profiles: which (rows, sequence length) shapes an engine is built for, derived
// from the batcher's token budget and sequence-length buckets. Plain C++, no TensorRT.
//
// Choice: one engine with one profile per sequence-length bucket (and a copy of that set per
// in-flight slot), not one profile spanning 1..max_seq, and not one engine per bucket.
// - The batcher keeps rows x padded length under a token budget, so short batches have many
//   rows and long batches few. One profile would have to allow max_rows AND max_seq at once;
//   TensorRT sizes activation memory for the profile's max shape, so that is
//   max_rows x max_seq tokens (e.g. 1024 x 512 = 8x a 65536 budget, with attention scores
//   quadratic in the length on top), and tunes kernels for one opt shape. Per-bucket
//   profiles keep every profile near the budget (at most budget x hi / lo tokens) and give
//   each bucket its own opt shape (the full batch at the top of the bucket).
// - One engine (not one per bucket) keeps one copy of the weights on the GPU and one cache
//   file, and the build shares its timing cache across the profiles.
// - TensorRT requires that execution contexts in concurrent use have distinct profiles, so the
//   bucket set is repeated once per slot: slot s, bucket b use profile s * buckets + b. The
//   copies are the same shapes, so the timing cache makes their tuning nearly free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ignite::trt {

struct ProfileShape {
  std::int64_t min_rows, opt_rows, max_rows;
  std::int64_t min_seq, opt_seq, max_seq;
};

struct ProfilePlan {
  std::vector<ProfileShape> buckets;  // ascending sequence-length ranges covering 1..max_seq
  int slots = 2;                      // copies of the bucket set, one per concurrent context

  int nb_profiles() const { return static_cast<int>(buckets.size()) * slots; }
  int profile_index(int slot, int bucket) const { return slot * static_cast<int>(buckets.size()) + bucket; }
  // The bucket whose range holds `seq`, or -1 when seq < 1 or seq > the last bucket's max.
  int bucket_for(std::int64_t seq) const;
  // Largest rows x seq any profile allows: the size of the per-slot input buffers.
  std::int64_t max_tokens() const;
  // Largest rows any profile allows: the size of the per-slot output buffer.
  std::int64_t max_rows() const;
  // Canonical text, part of the engine cache key: "s2;1-32:1024@32/1024;33-64:...".
  std::string describe() const;
};

// Buckets: ascending upper bounds of the sequence-length ranges; max_seq is appended when the
// last is below it; empty means powers of two from 32 up to max_seq. Each bucket (lo, hi] allows
// rows up to min(max_rows, max(1, budget / lo)), and is tuned for the full batch at hi.
// InvalidArgument on non-positive sizes or buckets that are not strictly ascending.
ProfilePlan plan_profiles(std::int64_t max_batch_tokens, std::int64_t max_seq, std::vector<std::int64_t> buckets,
                          std::int64_t max_rows, int slots);

}  // namespace ignite::trt
