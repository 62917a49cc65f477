// Appends byte ranges to one open file on threads of its own, so that writing output rows runs
// neither on the thread that commits nor under Python's GIL.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ignite::writer {

// Each submitted range is written whole at its offset. Where the file system takes O_DIRECT (a
// second descriptor on the same file), the range's whole 4 KiB blocks go to the disk through an
// aligned buffer of the writing thread, not through the page cache: a streamed output is not read
// again, and filling fresh page-cache pages cost 0.3-3.7 µs a 1.5 KB row on the VMs measured
// (direct: 0.08). The partial blocks at a range's ends go through the page cache; so does every
// range where O_DIRECT is refused (at open, or EINVAL at a write), and those are handed back to
// the kernel two writes behind (posix_fadvise DONTNEED: the first call starts their writeback,
// the next drops them once clean). Durability is the caller's fsync either way.
//
// Ranges are borrowed: the caller keeps each buffer alive until completed() reaches its ticket.
// Tickets complete in order, whichever thread wrote them. The first failed write (errno) stops
// the writer: later ranges are dropped (and completed), and error() says why. The file
// descriptor stays the caller's; the destructor waits for the queued writes.
class FileWriter {
 public:
  // Two threads by default: where O_DIRECT is refused, one thread's copy into the page cache
  // (~1 µs a 1.5 KB row on a slow VM) would cap a run near 1M rows/s.
  // `direct`: write whole blocks with O_DIRECT where the file system allows it.
  explicit FileWriter(int fd, unsigned threads = 2, bool direct = true);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Queues `size` bytes at `offset`; returns the range's ticket (1, 2, 3, ...).
  std::uint64_t submit(const void* data, std::size_t size, std::uint64_t offset);
  // Tickets 1..completed() are done (written, or dropped after an error).
  std::uint64_t completed() const;
  // Waits up to `timeout` for `ticket` to be done; whether it is.
  bool wait(std::uint64_t ticket, std::chrono::milliseconds timeout);
  // The errno of the first failed write; 0 if none.
  int error() const;
  // CPU time of the writing threads so far (the copies into the page cache or the aligned
  // buffers are most of it).
  double cpu_seconds() const;
  // Whether whole blocks still go out with O_DIRECT (false once refused).
  bool direct() const { return direct_fd_ >= 0 && direct_ok_.load(std::memory_order_relaxed); }

 private:
  struct Range {
    const unsigned char* data;
    std::size_t size;
    std::uint64_t offset;
    std::uint64_t ticket;
  };
  struct FreeAligned {
    void operator()(unsigned char* p) const;
  };
  void run(std::size_t slot);
  int write_range(const Range& r, std::size_t slot);
  int write_direct(const unsigned char* data, std::size_t size, std::uint64_t offset, std::size_t slot);
  int write_buffered(const Range& r);

  const int fd_;
  int direct_fd_ = -1;  // the same file opened with O_DIRECT; -1 where refused or not asked
  std::atomic<bool> direct_ok_{true};
  std::vector<std::unique_ptr<unsigned char, FreeAligned>> bounce_;  // per thread, made on first use
  mutable std::mutex mu_;
  std::condition_variable queued_, done_;
  std::deque<Range> queue_;
  std::deque<bool> finished_;  // tickets completed_+1, completed_+2, ...: written yet?
  std::uint64_t submitted_ = 0, completed_ = 0;
  int error_ = 0;
  std::vector<double> cpu_seconds_;  // per thread
  bool closing_ = false;
  std::vector<std::thread> threads_;  // last: started once the members above exist
};

}  // namespace ignite::writer
