#include "reader/line_framer.h"

#include <algorithm>
#include <cstring>

namespace ignite {
namespace reader {

LineFramer::LineFramer(ByteSource& source, std::uint64_t skip_lines, std::size_t max_line_bytes)
    : source_(source), skip_(skip_lines), max_line_bytes_(max_line_bytes), first_(skip_lines == 0) {}

bool LineFramer::refill() {
  Chunk chunk;
  while (source_.next(chunk)) {
    std::string_view bytes = chunk.bytes;
    consumed_ = chunk.consumed;
    if (skip_) {
      // Skipped lines are only counted, never framed, so a resume skips fast.
      const auto newlines = static_cast<std::uint64_t>(std::count(bytes.begin(), bytes.end(), '\n'));
      if (newlines < skip_) {
        skip_ -= newlines;
        continue;
      }
      std::size_t at = 0;
      for (; skip_; --skip_) at = bytes.find('\n', at) + 1;
      bytes.remove_prefix(at);
      if (bytes.empty()) continue;
    }
    if (first_) {
      if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
      first_ = false;
    }
    rest_ = bytes;
    have_chunk_ = true;
    return true;
  }
  return false;
}

bool LineFramer::emit(std::string_view bytes, Line& out) {
  if (!bytes.empty() && bytes.back() == '\r') bytes.remove_suffix(1);
  out = {bytes, false, consumed_};
  return true;
}

bool LineFramer::next(Line& out) {
  if (pending_out_) {
    pending_.clear();
    pending_out_ = false;
  }
  for (;;) {
    if (have_chunk_) {
      const void* nl = std::memchr(rest_.data(), '\n', rest_.size());
      if (nl) {
        const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - rest_.data());
        const std::string_view part = rest_.substr(0, len);
        rest_.remove_prefix(len + 1);
        if (discarding_) {
          discarding_ = false;
          out = {{}, true, consumed_};
          return true;
        }
        if (pending_.empty()) return emit(part, out);
        pending_.append(part);
        const std::size_t size = pending_.size();
        pending_.append(kPadding, '\0');
        pending_out_ = true;
        return emit(std::string_view(pending_.data(), size), out);
      }
      // The chunk ends inside a line: keep its start, unless the line is already too long.
      if (!discarding_) {
        pending_.append(rest_);
        if (pending_.size() > max_line_bytes_) {
          discarding_ = true;
          pending_.clear();
        }
      }
      have_chunk_ = false;
    }
    if (ended_) return false;
    if (refill()) continue;
    ended_ = true;
    consumed_ = source_.consumed();
    if (!source_.damage().empty()) return false;
    if (discarding_) {
      discarding_ = false;
      out = {{}, true, consumed_};
      return true;
    }
    if (pending_.empty()) return false;
    const std::size_t size = pending_.size();
    pending_.append(kPadding, '\0');
    pending_out_ = true;
    return emit(std::string_view(pending_.data(), size), out);
  }
}

}  // namespace reader
}  // namespace ignite
