// Appends byte ranges to one open file on a thread of its own, so that copying output rows into
// the page cache runs neither on the thread that commits nor under Python's GIL.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

namespace ignite::writer {

// Each submitted range is written whole with pwrite at its offset, in submission order. Two
// writes behind, a written range is handed back to the kernel (posix_fadvise DONTNEED): the first
// call starts its writeback, the next drops its pages once clean. A streamed output is not read
// again, and fresh page-cache pages cost a fault each (on some VMs, 4 µs a record of 1.5 KB).
//
// Ranges are borrowed: the caller keeps each buffer alive until completed() reaches its ticket.
// The first failed write (errno) stops the writer: later ranges are dropped, and error() says why.
// The file descriptor stays the caller's; the destructor waits for the queued writes.
class FileWriter {
 public:
  explicit FileWriter(int fd);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Queues `size` bytes at `offset`; returns the range's ticket (1, 2, 3, ...).
  std::uint64_t submit(const void* data, std::size_t size, std::uint64_t offset);
  // Tickets done (written, or dropped after an error), in order.
  std::uint64_t completed() const;
  // Waits up to `timeout` for `ticket` to be done; whether it is.
  bool wait(std::uint64_t ticket, std::chrono::milliseconds timeout);
  // The errno of the first failed write; 0 if none.
  int error() const;
  // CPU time of the writing thread so far (pwrite's copy into the page cache is most of it).
  double cpu_seconds() const;

 private:
  struct Range {
    const unsigned char* data;
    std::size_t size;
    std::uint64_t offset;
  };
  void run();
  int write_all(const Range& r);

  const int fd_;
  mutable std::mutex mu_;
  std::condition_variable queued_, done_;
  std::deque<Range> queue_;
  std::uint64_t submitted_ = 0, completed_ = 0;
  int error_ = 0;
  double cpu_seconds_ = 0;
  bool closing_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace ignite::writer
