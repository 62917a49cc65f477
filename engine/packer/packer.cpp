#include "packer/packer.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "core/error.h"

namespace ignite {
namespace {

std::int64_t round_up(std::int64_t length, std::int64_t multiple) {
  return (length / multiple + (length % multiple != 0)) * multiple;
}

// rows x width <= budget, without the product (it could overflow for absurd lengths).
bool fits(std::int64_t rows, std::int64_t width, std::int64_t budget) {
  return budget >= 0 && (width == 0 || width <= budget / rows);
}

// Record indices by ascending length, stable. Token lengths span a small range, so a counting
// sort; a range far wider than the records (never from a tokenizer) sorts by comparison instead
// of allocating a count per possible length.
std::vector<std::int64_t> sort_by_length(const std::int64_t* lengths, std::size_t n) {
  std::vector<std::int64_t> order(n);
  std::int64_t longest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (lengths[i] < 0) {
      throw InvalidArgument("plan_batches: lengths[" + std::to_string(i) + "] is negative (" +
                            std::to_string(lengths[i]) + ")");
    }
    longest = std::max(longest, lengths[i]);
  }
  if (static_cast<std::uint64_t>(longest) > n + 65536) {
    std::iota(order.begin(), order.end(), std::int64_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return lengths[a] < lengths[b]; });
    return order;
  }
  std::vector<std::size_t> start(static_cast<std::size_t>(longest) + 2, 0);
  for (std::size_t i = 0; i < n; ++i) ++start[static_cast<std::size_t>(lengths[i]) + 1];
  for (std::size_t v = 1; v < start.size(); ++v) start[v] += start[v - 1];
  for (std::size_t i = 0; i < n; ++i) {
    order[start[static_cast<std::size_t>(lengths[i])]++] = static_cast<std::int64_t>(i);
  }
  return order;
}

}  // namespace

BatchPlan plan_batches(const std::int64_t* lengths, std::size_t n, std::int64_t budget, std::int64_t pad_multiple,
                       std::int64_t max_rows, std::int64_t max_width) {
  if (pad_multiple < 1) {
    throw InvalidArgument("plan_batches: pad_multiple must be >= 1, not " + std::to_string(pad_multiple));
  }
  if (max_rows < 1) throw InvalidArgument("plan_batches: max_rows must be >= 1, not " + std::to_string(max_rows));
  if (max_width < 0) throw InvalidArgument("plan_batches: max_width must be >= 0, not " + std::to_string(max_width));
  BatchPlan plan;
  plan.order = sort_by_length(lengths, n);
  plan.bounds.push_back(0);
  auto padded = [&](std::size_t at) {
    const std::int64_t length = lengths[plan.order[at]];
    const std::int64_t rounded = round_up(length, pad_multiple);
    return max_width > 0 ? std::max(length, std::min(rounded, max_width)) : rounded;
  };
  std::size_t i = 0;
  while (i < n) {
    // Sorted ascending, so a batch's width is that of its last row and rows x width only grows
    // with each row taken: take rows while it stays under the budget, at least one.
    const std::int64_t cap = std::max<std::int64_t>(1, budget / std::max<std::int64_t>(padded(i), 1));
    const std::size_t span = std::min({n - i, static_cast<std::size_t>(max_rows), static_cast<std::size_t>(cap)});
    std::size_t k = 0;
    while (k < span && fits(static_cast<std::int64_t>(k) + 1, padded(i + k), budget)) ++k;
    i += std::max<std::size_t>(k, 1);
    plan.bounds.push_back(static_cast<std::int64_t>(i));
    plan.widths.push_back(padded(i - 1));
  }
  return plan;
}

std::int64_t fill_batch(const std::int32_t* tokens, std::size_t n_tokens, const std::int64_t* offsets,
                        std::size_t n_records, const std::int64_t* rows, std::size_t n_rows, std::int64_t width,
                        std::int32_t pad_id, std::int32_t* ids, std::int32_t* mask) {
  if (width < 0) throw InvalidArgument("fill_batch: width must be >= 0, not " + std::to_string(width));
  const auto w = static_cast<std::size_t>(width);
  std::int64_t real = 0;
  for (std::size_t j = 0; j < n_rows; ++j) {
    const std::int64_t r = rows[j];
    if (r < 0 || static_cast<std::uint64_t>(r) >= n_records) {
      throw InvalidArgument("fill_batch: row " + std::to_string(r) + " is outside the " + std::to_string(n_records) +
                            " records");
    }
    const std::int64_t lo = offsets[r], hi = offsets[r + 1];
    if (lo < 0 || hi < lo || static_cast<std::uint64_t>(hi) > n_tokens) {
      throw InvalidArgument("fill_batch: offsets of row " + std::to_string(r) + " [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + ") fall outside the " + std::to_string(n_tokens) + " tokens");
    }
    if (hi - lo > width) {
      throw InvalidArgument("fill_batch: row " + std::to_string(r) + " has " + std::to_string(hi - lo) +
                            " tokens, more than the width " + std::to_string(width));
    }
    const auto len = static_cast<std::size_t>(hi - lo);
    std::int32_t* id_row = ids + j * w;
    std::int32_t* mask_row = mask + j * w;
    std::copy(tokens + lo, tokens + hi, id_row);
    std::fill(id_row + len, id_row + w, pad_id);
    std::fill(mask_row, mask_row + len, 1);
    std::fill(mask_row + len, mask_row + w, 0);
    real += hi - lo;
  }
  return real;
}

}  // namespace ignite
