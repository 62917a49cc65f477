// Tests of engine/writer/file_writer.h: every byte lands at its offset whatever the order and size
// of the ranges, the number of threads and the path (O_DIRECT for whole blocks, or the page cache),
// tickets complete in order, a failed write stops the writer with its errno, and the destructor
// waits for what was queued.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "writer/file_writer.h"

#include "check.h"

using ignite::writer::FileWriter;
using namespace std::chrono_literals;

namespace {

struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    char name[] = "/tmp/ignite-test-file-writer-XXXXXX";
    fd = ::mkstemp(name);
    path = name;
  }
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
  }
  std::vector<unsigned char> contents() const {
    struct stat st{};
    ::fstat(fd, &st);
    std::vector<unsigned char> out(static_cast<std::size_t>(st.st_size));
    if (!out.empty() && ::pread(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) out.clear();
    return out;
  }
};

// Random ranges (0 to 1 MB, and two of 9 MB: more than a thread's aligned buffer) appended back to
// back from an unaligned start, so most begin and end inside a block, some submitted before earlier
// ones are written: the file equals the concatenation, and every ticket comes back in order.
void ranges_land_at_their_offsets(unsigned threads, bool direct) {
  TempFile f;
  std::mt19937_64 rng(11);
  std::vector<std::vector<unsigned char>> buffers;
  buffers.emplace_back(128, 'h');  // an .npy header's worth
  for (int i = 0; i < 40; ++i) {
    const std::size_t size = i % 20 == 5 ? (std::size_t{9} << 20) + 1536 : rng() % (1u << 20);
    std::vector<unsigned char> b(size, static_cast<unsigned char>(i));  // each range its own byte
    for (std::size_t k = 0; k < b.size(); k += 4096) b[k] = static_cast<unsigned char>(rng());
    buffers.push_back(std::move(b));
  }
  std::vector<unsigned char> expected;
  {
    FileWriter w(f.fd, threads, direct);
    if (direct && !w.direct()) std::printf("  (O_DIRECT refused under /tmp: the page cache path ran)\n");
    std::uint64_t offset = 0, last = 0, seen = 0;
    for (const auto& b : buffers) {
      const std::uint64_t ticket = w.submit(b.data(), b.size(), offset);
      CHECK(ticket == last + 1);
      last = ticket;
      offset += b.size();
      expected.insert(expected.end(), b.begin(), b.end());
      if (ticket % 7 == 0) CHECK(w.wait(ticket, 10s) && w.completed() >= ticket);
      const std::uint64_t now = w.completed();
      CHECK(now >= seen && now <= ticket);  // never backwards, never past what was submitted
      seen = now;
    }
    CHECK(w.wait(last, 10s));
    CHECK(w.completed() == last);
    CHECK(w.error() == 0);
    CHECK(w.cpu_seconds() >= 0);
    if (!direct) CHECK(!w.direct());
  }
  CHECK(f.contents() == expected);
}

// A block-aligned buffer at block-aligned offsets goes out without a copy; the file is the same.
void aligned_buffers_land_too() {
  TempFile f;
  constexpr std::size_t kSize = std::size_t{3} << 20;
  void* raw = nullptr;
  CHECK(::posix_memalign(&raw, 4096, kSize) == 0);
  std::unique_ptr<unsigned char, decltype(&std::free)> data(static_cast<unsigned char*>(raw), &std::free);
  std::mt19937 rng(5);
  for (std::size_t k = 0; k < kSize; ++k) data.get()[k] = static_cast<unsigned char>(rng());
  {
    FileWriter w(f.fd, 2);
    w.submit(data.get(), kSize / 2, kSize / 2);
    w.submit(data.get(), kSize / 2, 0);
    w.submit(data.get() + kSize / 2, kSize / 2, kSize);
  }
  std::vector<unsigned char> expected(data.get(), data.get() + kSize / 2);
  expected.insert(expected.end(), data.get(), data.get() + kSize);
  CHECK(f.contents() == expected);
}

// Ranges out of offset order (a header rewritten last, holes filled later) are still written
// where they belong.
void out_of_order_offsets() {
  TempFile f;
  const std::vector<unsigned char> a(5000, 'a'), b(3000, 'b'), h(16, 'h');
  {
    FileWriter w(f.fd);
    w.submit(b.data(), b.size(), 16 + a.size());
    w.submit(a.data(), a.size(), 16);
    w.submit(h.data(), h.size(), 0);
  }  // the destructor waits for all three
  std::vector<unsigned char> expected(h);
  expected.insert(expected.end(), a.begin(), a.end());
  expected.insert(expected.end(), b.begin(), b.end());
  CHECK(f.contents() == expected);
}

// A write past the file size limit fails with EFBIG (SIGXFSZ ignored, as Python does): the error
// is kept, later ranges are dropped yet completed, and waiting never hangs. A limit inside a
// block cuts an O_DIRECT write short of a whole block, which the kernel refuses (EINVAL): the
// writer goes on through the page cache and still reports EFBIG.
void failed_write_stops_the_writer(rlim_t limit) {
  TempFile f;
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = limit;
  if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
    std::printf("  (RLIMIT_FSIZE cannot be lowered here: skipped)\n");
    return;
  }
  std::signal(SIGXFSZ, SIG_IGN);
  const std::vector<unsigned char> big(1 << 17, 'x'), more(100, 'y');
  {
    FileWriter w(f.fd);
    w.submit(big.data(), big.size(), 0);
    const std::uint64_t t = w.submit(more.data(), more.size(), 1 << 20);
    CHECK(w.wait(t, 10s));
    CHECK(w.error() == EFBIG);
    CHECK(w.completed() == t);
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  const std::vector<unsigned char> written = f.contents();
  CHECK(written.size() <= limit);  // nothing past the limit, nothing of the dropped range
  CHECK(std::vector<unsigned char>(big.begin(), big.begin() + static_cast<std::ptrdiff_t>(written.size())) == written);
}

// Many producers' worth of small ranges while the consumer waits on random tickets (for TSan).
void waits_race_the_writer() {
  TempFile f;
  std::vector<unsigned char> row(1536, 'r');
  FileWriter w(f.fd, 4);
  std::mt19937 rng(3);
  std::uint64_t last = 0;
  for (int i = 0; i < 4000; ++i) {
    last = w.submit(row.data(), row.size(), static_cast<std::uint64_t>(i) * row.size());
    if (rng() % 16 == 0) CHECK(w.wait(1 + rng() % last, 10s));
  }
  CHECK(w.wait(last, 10s));
  CHECK(f.contents().size() == 4000 * row.size());
}

}  // namespace

int main() {
  const std::pair<const char*, void (*)()> tests[] = {
      {"ranges_land_at_their_offsets_1_thread", [] { ranges_land_at_their_offsets(1, true); }},
      {"ranges_land_at_their_offsets_3_threads", [] { ranges_land_at_their_offsets(3, true); }},
      {"ranges_land_at_their_offsets_page_cache", [] { ranges_land_at_their_offsets(3, false); }},
      {"aligned_buffers_land_too", aligned_buffers_land_too},
      {"out_of_order_offsets", out_of_order_offsets},
      {"failed_write_stops_the_writer_block_limit", [] { failed_write_stops_the_writer(1 << 16); }},
      {"failed_write_stops_the_writer_mid_block_limit", [] { failed_write_stops_the_writer((1 << 16) + 100); }},
      {"waits_race_the_writer", waits_race_the_writer},
  };
  ignite_test::run_named(tests);
  return ignite_test::finish("test_file_writer");
}
