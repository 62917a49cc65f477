// Lines of a ByteSource, framed as the Python reader frames them (ignite.io.readers._lines):
// LF or CRLF endings removed, a UTF-8 BOM at the very start dropped, a last line without a
// newline kept, and the first skip_lines lines only counted. A line is too long when, at the
// end of a chunk, its unfinished part exceeds max_line_bytes: its bytes are dropped and it comes
// out as one too_long line. After damage the unfinished line is dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reader/byte_source.h"

namespace ignite {
namespace reader {

struct Line {
  std::string_view bytes;  // followed by kPadding readable bytes; empty when too_long
  bool too_long = false;
  std::uint64_t consumed = 0;  // file bytes read when the line was complete
};

class LineFramer {
 public:
  LineFramer(ByteSource& source, std::uint64_t skip_lines, std::size_t max_line_bytes);

  // The next line; false at the end of the bytes (source.damage() tells whether it was clean).
  bool next(Line& out);

 private:
  // Takes the next chunk into rest_, after the lines still to skip; false at the end.
  bool refill();
  bool emit(std::string_view bytes, Line& out);

  ByteSource& source_;
  std::uint64_t skip_;
  std::size_t max_line_bytes_;
  std::string_view rest_;  // unread bytes of the current chunk
  bool have_chunk_ = false;
  std::uint64_t consumed_ = 0;
  std::string pending_;  // the start of a line continued from earlier chunks
  bool pending_out_ = false;  // pending_ (with padding) was handed out as a line: clear it first
  bool discarding_ = false;  // inside a line already too long
  bool first_;  // the next chunk is the file's first (BOM check)
  bool ended_ = false;
};

}  // namespace reader
}  // namespace ignite
