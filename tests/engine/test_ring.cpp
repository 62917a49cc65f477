// Tests of engine/concurrency/ring.h: ordering, bounds, object lifetimes, many threads, close.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "concurrency/ring.h"

#include "check.h"

using namespace std::chrono_literals;
using ignite::BlockingRing;
using ignite::Ring;
using ignite::RingStatus;


struct Counted {
  static std::atomic<int> alive;
  int value = 0;
  Counted() { ++alive; }
  explicit Counted(int v) : value(v) { ++alive; }
  Counted(const Counted& o) : value(o.value) { ++alive; }
  Counted(Counted&& o) noexcept : value(o.value) { ++alive; }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
  ~Counted() { --alive; }
};
std::atomic<int> Counted::alive{0};

static void single_thread_fifo_and_bounds() {
  Ring<int> ring(5);
  CHECK(ring.capacity() == 8);
  for (int i = 0; i < 8; ++i) CHECK(ring.try_push(i));
  CHECK(!ring.try_push(99));  // full
  CHECK(ring.size() == 8);
  int v = -1;
  for (int i = 0; i < 8; ++i) {
    CHECK(ring.try_pop(v));
    CHECK(v == i);
  }
  CHECK(!ring.try_pop(v));  // empty
  CHECK(ring.size() == 0);
  // Many laps, so sequence numbers wrap the slots many times.
  for (int i = 0; i < 1000; ++i) {
    CHECK(ring.try_push(i));
    CHECK(ring.try_pop(v) && v == i);
  }
}

static void capacity_rounding() {
  CHECK(Ring<int>(1).capacity() == 2);  // the sequence scheme needs two slots
  CHECK(Ring<int>(2).capacity() == 2);
  CHECK(Ring<int>(8).capacity() == 8);
  CHECK(Ring<int>(9).capacity() == 16);
  CHECK(BlockingRing<int>(1000).capacity() == 1024);
  Ring<int> two(1);
  int v = 0;
  CHECK(two.try_push(7) && two.try_push(8) && !two.try_push(9));
  CHECK(two.try_pop(v) && v == 7 && two.try_pop(v) && v == 8 && !two.try_pop(v));
  for (std::size_t bad : {std::size_t{0}, ignite::kMaxRingCapacity + 1}) {
    bool threw = false;
    try {
      Ring<int> ring(bad);
    } catch (const ignite::InvalidArgument&) {
      threw = true;
    }
    CHECK(threw);
  }
}

static void lifetimes_balance() {
  {
    Ring<Counted> ring(4);
    for (int i = 0; i < 3; ++i) CHECK(ring.try_push(Counted(i)));
    Counted out;
    CHECK(ring.try_pop(out) && out.value == 0);
    // Two items are left inside: the destructor must destroy them.
  }
  CHECK(Counted::alive.load() == 0);
  {
    BlockingRing<Counted> ring(2);
    CHECK(ring.push(Counted(1), 10ms) == RingStatus::kOk);
    CHECK(ring.push(Counted(2), 10ms) == RingStatus::kOk);
    CHECK(ring.push(Counted(3), 10ms) == RingStatus::kTimeout);  // nothing constructed inside
    Counted out;
    CHECK(ring.pop(out, 10ms) == RingStatus::kOk && out.value == 1);
    ring.close();
  }
  CHECK(Counted::alive.load() == 0);
}

static void move_only_items_survive_failed_pushes() {
  BlockingRing<std::unique_ptr<int>> ring(2);
  CHECK(ring.push(std::make_unique<int>(0), 1ms) == RingStatus::kOk);
  CHECK(ring.push(std::make_unique<int>(1), 1ms) == RingStatus::kOk);
  auto second = std::make_unique<int>(2);
  CHECK(ring.push(std::move(second), 1ms) == RingStatus::kTimeout);
  CHECK(second && *second == 2);  // a failed push leaves the value with the caller
  std::unique_ptr<int> out;
  CHECK(ring.try_pop(out) == RingStatus::kOk && *out == 0);
  CHECK(ring.try_push(std::move(second)) == RingStatus::kOk && !second);
}

static void many_threads_each_item_once() {
  constexpr int kProducers = 4, kConsumers = 4, kPerProducer = 200000;
  BlockingRing<std::uint64_t> ring(64);
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(kProducers) * kPerProducer);
  std::atomic<std::uint64_t> sum{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        const std::uint64_t item = static_cast<std::uint64_t>(p) * kPerProducer + i;
        while (ring.push(item, 100ms) != RingStatus::kOk) {
        }
      }
    });
  }
  std::vector<std::thread> consumers;
  std::vector<std::vector<std::uint64_t>> order(kConsumers);
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      std::uint64_t item;
      for (;;) {
        const auto status = ring.pop(item, 100ms);
        if (status == RingStatus::kClosed) return;
        if (status == RingStatus::kOk) {
          seen[item].fetch_add(1);
          sum += item;
          order[c].push_back(item);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ring.close();
  for (auto& t : consumers) t.join();
  bool once = true;
  for (auto& s : seen) once = once && s.load() == 1;
  CHECK(once);
  const std::uint64_t n = static_cast<std::uint64_t>(kProducers) * kPerProducer;
  CHECK(sum.load() == n * (n - 1) / 2);
  // Per producer FIFO as seen by each consumer.
  for (auto& items : order) {
    std::vector<std::int64_t> last(kProducers, -1);
    for (auto item : items) {
      const auto p = item / kPerProducer;
      CHECK(static_cast<std::int64_t>(item) > last[p]);
      last[p] = static_cast<std::int64_t>(item);
    }
  }
}

static void close_drains_then_reports_closed() {
  BlockingRing<int> ring(8);
  for (int i = 0; i < 5; ++i) CHECK(ring.push(i, 10ms) == RingStatus::kOk);
  ring.close();
  CHECK(ring.push(9, 10ms) == RingStatus::kClosed);
  CHECK(ring.try_push(9) == RingStatus::kClosed);
  int v = -1;
  for (int i = 0; i < 5; ++i) CHECK(ring.pop(v, 10ms) == RingStatus::kOk && v == i);
  CHECK(ring.pop(v, 10ms) == RingStatus::kClosed);
  CHECK(ring.try_pop(v) == RingStatus::kClosed);
}

static void close_wakes_blocked_threads() {
  BlockingRing<int> empty(4);
  BlockingRing<int> full(2);
  full.push(1, 1ms);
  full.push(2, 1ms);
  std::atomic<int> woke{0};
  std::thread popper([&] {
    int v;
    if (empty.pop(v, 10s) == RingStatus::kClosed) ++woke;
  });
  std::thread pusher([&] {
    if (full.push(3, 10s) == RingStatus::kClosed) ++woke;
  });
  std::this_thread::sleep_for(50ms);
  const auto start = std::chrono::steady_clock::now();
  empty.close();
  full.close();
  popper.join();
  pusher.join();
  CHECK(woke.load() == 2);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
}

static void timed_waits_time_out() {
  BlockingRing<int> ring(2);
  int v;
  auto start = std::chrono::steady_clock::now();
  CHECK(ring.pop(v, 30ms) == RingStatus::kTimeout);
  CHECK(std::chrono::steady_clock::now() - start >= 30ms);
  ring.push(1, 1ms);
  ring.push(2, 1ms);
  start = std::chrono::steady_clock::now();
  CHECK(ring.push(3, 30ms) == RingStatus::kTimeout);
  CHECK(std::chrono::steady_clock::now() - start >= 30ms);
  CHECK(ring.try_push(3) == RingStatus::kTimeout);
}

// Producers keep pushing while close() lands: every push that reported kOk must be popped.
static void pushes_racing_close_are_never_lost() {
  for (int round = 0; round < 20; ++round) {
    BlockingRing<int> ring(16);
    std::atomic<long> accepted{0}, popped{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < 2; ++p) {
      threads.emplace_back([&] {
        for (int i = 0;; ++i) {
          const auto status = ring.push(i, 1ms);
          if (status == RingStatus::kClosed) return;
          if (status == RingStatus::kOk) ++accepted;
        }
      });
    }
    threads.emplace_back([&] {
      int v;
      for (;;) {
        const auto status = ring.pop(v, 1ms);
        if (status == RingStatus::kClosed) return;
        if (status == RingStatus::kOk) ++popped;
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (round + 1)));
    ring.close();
    for (auto& t : threads) t.join();
    CHECK(accepted.load() == popped.load());
    CHECK(ring.size() == 0);
  }
}

// Every hop of a ping-pong needs the other thread woken. A lost wake-up would not fail an
// operation (waits are timed and retry once at the deadline) but would stall it for the full
// timeout, so check the slowest hop instead.
static void ping_pong_never_loses_a_wakeup() {
  BlockingRing<int> requests(2), replies(2);
  constexpr int kRounds = 5000;
  std::thread echo([&] {
    int v;
    while (requests.pop(v, 2s) == RingStatus::kOk) CHECK(replies.push(v, 2s) == RingStatus::kOk);
  });
  for (int i = 0; i < kRounds; ++i) {
    const auto start = std::chrono::steady_clock::now();
    int v = -1;
    const bool ok = requests.push(i, 2s) == RingStatus::kOk && replies.pop(v, 2s) == RingStatus::kOk && v == i;
    const bool fast = std::chrono::steady_clock::now() - start < 1s;
    CHECK(ok && fast);
    if (!ok || !fast) break;  // one stall is enough; the rest would only add timeouts
  }
  requests.close();
  echo.join();
}

int main() {
  const std::pair<const char*, void (*)()> tests[] = {
      {"single_thread_fifo_and_bounds", single_thread_fifo_and_bounds},
      {"capacity_rounding", capacity_rounding},
      {"lifetimes_balance", lifetimes_balance},
      {"move_only_items_survive_failed_pushes", move_only_items_survive_failed_pushes},
      {"close_drains_then_reports_closed", close_drains_then_reports_closed},
      {"close_wakes_blocked_threads", close_wakes_blocked_threads},
      {"timed_waits_time_out", timed_waits_time_out},
      {"pushes_racing_close_are_never_lost", pushes_racing_close_are_never_lost},
      {"ping_pong_never_loses_a_wakeup", ping_pong_never_loses_a_wakeup},
      {"many_threads_each_item_once", many_threads_each_item_once},
  };
  ignite_test::run_named(tests);
  return ignite_test::finish("test_ring");
}
