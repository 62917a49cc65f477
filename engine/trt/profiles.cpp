#include "trt/profiles.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace ignite::trt {

int ProfilePlan::bucket_for(std::int64_t seq) const {
  if (seq < 1) return -1;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (seq <= buckets[i].max_seq) return static_cast<int>(i);
  }
  return -1;
}

std::int64_t ProfilePlan::max_tokens() const {
  std::int64_t most = 0;
  for (const auto& b : buckets) most = std::max(most, b.max_rows * b.max_seq);
  return most;
}

std::int64_t ProfilePlan::max_rows() const {
  std::int64_t most = 0;
  for (const auto& b : buckets) most = std::max(most, b.max_rows);
  return most;
}

std::string ProfilePlan::describe() const {
  std::ostringstream out;
  out << "s" << slots;
  for (const auto& b : buckets) {
    out << ";" << b.min_seq << "-" << b.max_seq << ":" << b.min_rows << "-" << b.max_rows << "@" << b.opt_rows << "x"
        << b.opt_seq;
  }
  return out.str();
}

ProfilePlan plan_profiles(std::int64_t max_batch_tokens, std::int64_t max_seq, std::vector<std::int64_t> buckets,
                          std::int64_t max_rows, int slots) {
  if (max_batch_tokens < 1) throw InvalidArgument("max_batch_tokens must be at least 1");
  if (max_seq < 1) throw InvalidArgument("max_seq must be at least 1");
  if (max_rows < 1) throw InvalidArgument("max_rows must be at least 1");
  if (slots < 1 || slots > 8) throw InvalidArgument("slots must be between 1 and 8");
  if (buckets.empty()) {
    for (std::int64_t b = 32; b < max_seq; b *= 2) buckets.push_back(b);
  }
  if (buckets.empty() || buckets.back() < max_seq) buckets.push_back(max_seq);
  std::int64_t previous = 0;
  for (std::int64_t b : buckets) {
    if (b <= previous) throw InvalidArgument("buckets must be positive and strictly ascending");
    if (b > max_seq) throw InvalidArgument("bucket " + std::to_string(b) + " exceeds max_seq " + std::to_string(max_seq));
    previous = b;
  }
  ProfilePlan plan;
  plan.slots = slots;
  std::int64_t lo = 1;
  for (std::int64_t hi : buckets) {
    ProfileShape shape{};
    shape.min_rows = 1;
    shape.max_rows = std::clamp<std::int64_t>(max_batch_tokens / lo, 1, max_rows);
    shape.opt_rows = std::clamp<std::int64_t>(max_batch_tokens / hi, 1, shape.max_rows);
    shape.min_seq = lo;
    shape.opt_seq = hi;
    shape.max_seq = hi;
    plan.buckets.push_back(shape);
    lo = hi + 1;
  }
  return plan;
}

}  // namespace ignite::trt
