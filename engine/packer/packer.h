// The packer: a window's records sorted by token length and cut into batches whose padded size
// (rows x padded length) stays under a token budget, and a batch's padded ids and mask written
// into buffers the caller owns, so steady state allocates nothing per batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ignite {

// Batch i holds records order[bounds[i], bounds[i+1]), padded to widths[i] tokens.
struct BatchPlan {
  std::vector<std::int64_t> order;   // record indices by ascending length; equal lengths in input order
  std::vector<std::int64_t> bounds;  // batches + 1
  std::vector<std::int64_t> widths;  // per batch: its longest length rounded up to pad_multiple
};

// Plans batches of the records with these token lengths (each >= 0). A batch grows while
// rows x width <= budget and rows <= max_rows; a record over the budget gets a batch of its own.
// max_width > 0 caps the rounding up to pad_multiple: a batch is never padded past it (the
// backend's longest shape, i.e. the tokenizer's max length), though a record longer than it keeps
// its own length. InvalidArgument on a negative length, pad_multiple < 1, max_rows < 1 or
// max_width < 0.
BatchPlan plan_batches(const std::int64_t* lengths, std::size_t n, std::int64_t budget, std::int64_t pad_multiple,
                       std::int64_t max_rows, std::int64_t max_width = 0);

// Writes the tokens of records rows[0, n_rows) (record r is tokens[offsets[r], offsets[r+1]))
// as row-major [n_rows, width] int32 ids, pad_id past each record's end, and its 0/1 mask.
// Returns the real (unpadded) token count. InvalidArgument when a row is out of range, its
// offsets fall outside the tokens, or it is longer than width.
std::int64_t fill_batch(const std::int32_t* tokens, std::size_t n_tokens, const std::int64_t* offsets,
                        std::size_t n_records, const std::int64_t* rows, std::size_t n_rows, std::int64_t width,
                        std::int32_t pad_id, std::int32_t* ids, std::int32_t* mask);

}  // namespace ignite
