// Tests of engine/packer: plans against a direct reference (stable sort, then take rows while
// rows x width fits), ties, the row cap, over-long records, the wide-range sort, refusals; fill
// into caller buffers; plans and fills from several threads at once (run under ASan/UBSan and TSan).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "core/error.h"
#include "packer/packer.h"

#include "check.h"

using ignite::BatchPlan;
using ignite::InvalidArgument;
using I64 = std::vector<std::int64_t>;
using I32 = std::vector<std::int32_t>;

using ignite_test::throws_invalid;

static BatchPlan plan(const I64& lengths, std::int64_t budget, std::int64_t multiple = 1,
                      std::int64_t max_rows = 1024) {
  return ignite::plan_batches(lengths.data(), lengths.size(), budget, multiple, max_rows);
}

// The numpy packer's rule (python/ignite/backends/packing.py) written out plainly, for lengths that cannot overflow.
static BatchPlan reference(const I64& lengths, std::int64_t budget, std::int64_t multiple, std::int64_t max_rows) {
  BatchPlan p;
  p.order.resize(lengths.size());
  std::iota(p.order.begin(), p.order.end(), std::int64_t{0});
  std::stable_sort(p.order.begin(), p.order.end(),
                   [&](std::int64_t a, std::int64_t b) { return lengths[a] < lengths[b]; });
  auto padded = [&](std::size_t at) { return (lengths[p.order[at]] + multiple - 1) / multiple * multiple; };
  p.bounds.push_back(0);
  std::size_t i = 0;
  while (i < lengths.size()) {
    const std::int64_t per_row = std::max<std::int64_t>(padded(i), 1);
    const std::int64_t cap = std::min(max_rows, std::max<std::int64_t>(1, budget / per_row));
    std::size_t k = 1;
    while (i + k < lengths.size() && static_cast<std::int64_t>(k) < cap &&
           static_cast<std::int64_t>(k + 1) * padded(i + k) <= budget) {
      ++k;
    }
    i += k;
    p.bounds.push_back(static_cast<std::int64_t>(i));
    p.widths.push_back(padded(i - 1));
  }
  return p;
}

static bool same(const BatchPlan& a, const BatchPlan& b) {
  return a.order == b.order && a.bounds == b.bounds && a.widths == b.widths;
}

static void test_plan_examples() {
  // Lengths 3, 1, 3, 2 with multiple 2: sorted 1 (row 1), 2 (row 3), 3 (row 0), 3 (row 2); ties
  // keep input order. Widths 2, 2, 4, 4: two rows of 2 fit a budget of 8, then two of 4.
  const auto p = plan({3, 1, 3, 2}, 8, 2);
  CHECK((p.order == I64{1, 3, 0, 2}));
  CHECK((p.bounds == I64{0, 2, 4}));
  CHECK((p.widths == I64{2, 4}));
  // Over the budget: alone, at its own width.
  const auto over = plan({5, 100, 5}, 20);
  CHECK((over.order == I64{0, 2, 1}) && (over.bounds == I64{0, 2, 3}) && (over.widths == I64{5, 100}));
  // The row cap, and a budget of 0 or less: one row each.
  CHECK((plan(I64(10, 1), 1000, 1, 4).bounds == I64{0, 4, 8, 10}));
  CHECK((plan({1, 2, 3}, 0).bounds == I64{0, 1, 2, 3}));
  CHECK((plan({1, 2, 3}, -5).bounds == I64{0, 1, 2, 3}));
  // Empty records: width 0; as many as the budget counts (as if each took one token), to the row cap.
  CHECK((plan(I64(40, 0), 16, 8).bounds == I64{0, 16, 32, 40}));
  const auto zeros = plan(I64(3000, 0), 100000, 8);
  CHECK((zeros.bounds == I64{0, 1024, 2048, 3000}) && (zeros.widths == I64{0, 0, 0}));
  const auto none = plan({}, 100);
  CHECK(none.order.empty() && (none.bounds == I64{0}) && none.widths.empty());
}

static void test_plan_matches_reference() {
  std::mt19937_64 rng(20261129);
  const std::int64_t budgets[] = {-1, 0, 1, 9, 100, 1000, 8192, 1 << 20};
  const std::int64_t multiples[] = {1, 2, 8, 64};
  const std::int64_t caps[] = {1, 3, 1024};
  int checked = 0, differ = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const std::size_t n = rng() % 600;
    const std::int64_t high = 1 + static_cast<std::int64_t>(rng() % (trial % 3 == 0 ? 4 : 700));
    I64 lengths(n);
    for (auto& v : lengths) v = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(high));
    const auto budget = budgets[rng() % 8], multiple = multiples[rng() % 4], cap = caps[rng() % 3];
    differ += !same(plan(lengths, budget, multiple, cap), reference(lengths, budget, multiple, cap));
    ++checked;
  }
  CHECK(checked == 3000 && differ == 0);
  // A range far wider than the records: the comparison sort, stable too.
  I64 wide{1000000000, 3, 1000000000, 3, 100000000, 0, 1000000000};
  CHECK(same(plan(wide, 2000000000, 1, 1024), reference(wide, 2000000000, 1, 1024)));
  CHECK((plan(wide, 2000000000).order == I64{5, 1, 3, 4, 0, 2, 6}));
}

static void test_plan_refusals() {
  CHECK(throws_invalid([] { plan({1, -1}, 10); }));
  CHECK(throws_invalid([] { plan({1}, 10, 0); }));
  CHECK(throws_invalid([] { plan({1}, 10, 1, 0); }));
  CHECK(throws_invalid([] { I64 one{1}; ignite::plan_batches(one.data(), 1, 10, 1, 8, -1); }));
}

// A GPU engine's longest profile is the max length: 100 tokens with pad multiple 8 stay 100, not
// 104; shorter records still round up; a record longer than the cap keeps its own length.
static void test_plan_max_width() {
  const I64 lengths{100, 97, 3, 130};
  const BatchPlan p = ignite::plan_batches(lengths.data(), lengths.size(), 100, 8, 1024, 100);
  CHECK((p.order == I64{2, 1, 0, 3}));
  CHECK((p.widths == I64{8, 100, 100, 130}));
  const BatchPlan uncapped = ignite::plan_batches(lengths.data(), lengths.size(), 100, 8, 1024, 0);
  CHECK((uncapped.widths == I64{8, 104, 104, 136}));
}

static void test_fill() {
  // Records: [10 11 12], [], [20], [30 31 32 33].
  const I32 tokens{10, 11, 12, 20, 30, 31, 32, 33};
  const I64 offsets{0, 3, 3, 4, 8};
  const I64 rows{3, 1, 0};
  I32 ids(3 * 4, -1), mask(3 * 4, -1);
  const auto real = ignite::fill_batch(tokens.data(), tokens.size(), offsets.data(), 4, rows.data(), rows.size(), 4,
                                       7, ids.data(), mask.data());
  CHECK(real == 7);
  CHECK((ids == I32{30, 31, 32, 33, 7, 7, 7, 7, 10, 11, 12, 7}));
  CHECK((mask == I32{1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0}));
  auto fill = [&](const I64& r, std::int64_t width, const I64& offs) {
    return ignite::fill_batch(tokens.data(), tokens.size(), offs.data(), offs.size() - 1, r.data(), r.size(), width, 0,
                              ids.data(), mask.data());
  };
  CHECK(throws_invalid([&] { fill({3}, 3, offsets); }));            // longer than the width
  CHECK(throws_invalid([&] { fill({4}, 4, offsets); }));            // no record 4
  CHECK(throws_invalid([&] { fill({-1}, 4, offsets); }));
  CHECK(throws_invalid([&] { fill({0}, 4, {0, 9}); }));             // past the tokens
  CHECK(throws_invalid([&] { fill({0}, 4, {3, 2}); }));             // backwards
  CHECK(throws_invalid([&] { fill({0}, -1, offsets); }));
  CHECK(fill({}, 4, offsets) == 0);
}

static void test_threads() {
  // Plans and fills of separate windows at once: no shared state, so TSan finds nothing.
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &bad] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int round = 0; round < 20; ++round) {
        I64 lengths(2000), offsets{0};
        for (auto& v : lengths) {
          v = static_cast<std::int64_t>(rng() % 300);
          offsets.push_back(offsets.back() + v);
        }
        I32 tokens(static_cast<std::size_t>(offsets.back()));
        std::iota(tokens.begin(), tokens.end(), 0);
        const auto p = plan(lengths, 4096, 8);
        I32 ids(4096 + 512), mask(4096 + 512);
        std::int64_t real = 0;
        for (std::size_t b = 0; b + 1 < p.bounds.size(); ++b) {
          const auto n = static_cast<std::size_t>(p.bounds[b + 1] - p.bounds[b]);
          real += ignite::fill_batch(tokens.data(), tokens.size(), offsets.data(), lengths.size(),
                                     p.order.data() + p.bounds[b], n, p.widths[b], 0, ids.data(), mask.data());
          const auto first = p.order[static_cast<std::size_t>(p.bounds[b])];
          if (lengths[first] > 0 && ids[0] != tokens[static_cast<std::size_t>(offsets[first])]) ++bad[t];
        }
        if (real != offsets.back()) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(std::accumulate(bad.begin(), bad.end(), 0) == 0);
}

int main() {
  test_plan_examples();
  test_plan_matches_reference();
  test_plan_refusals();
  test_plan_max_width();
  test_fill();
  test_threads();
  return ignite_test::finish("test_packer");
}
