// Tests of engine/concurrency/ring.h: ordering, bounds, object lifetimes, many threads, close.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "concurrency/ring.h"

using namespace std::chrono_literals;
using ignite::BlockingRing;
using ignite::Ring;
using ignite::RingStatus;

static int failures = 0;
#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

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
  // Wrap around many times.
  for (int i = 0; i < 1000; ++i) {
    CHECK(ring.try_push(i));
    CHECK(ring.try_pop(v) && v == i);
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
    BlockingRing<std::string> ring(2);
    CHECK(ring.push(std::string(100, 'x'), 10ms) == RingStatus::kOk);
  }
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

int main() {
  single_thread_fifo_and_bounds();
  lifetimes_balance();
  close_drains_then_reports_closed();
  close_wakes_blocked_threads();
  timed_waits_time_out();
  many_threads_each_item_once();
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("ring tests passed\n");
  return 0;
}
