// Windows of records from one JSONL or text file: the native twin of the Python reader's
// RecordReader._line_windows, with the same records, statuses, line numbers, window cuts,
// end offsets and damage. A window holds its texts as one UTF-8 arena with offsets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "reader/byte_source.h"
#include "reader/json_record.h"
#include "reader/line_framer.h"

namespace ignite {
namespace reader {

struct ReaderOptions {
  std::string path;
  Compression compression = Compression::kNone;
  bool jsonl = true;  // false: plain text, a record per line
  std::string field = "text";  // dotted path (JSONL)
  std::string id_field;  // dotted path; empty: no ids
  std::size_t window_records = 65536;
  std::uint64_t skip_lines = 0;  // resume: lines already committed; a shard: lines before its range
  // The file ends, for this reader, after line skip_lines + max_lines (a shard's line range).
  std::uint64_t max_lines = std::numeric_limits<std::uint64_t>::max();
  std::size_t read_chunk = 1 << 20;
  std::size_t max_line_bytes = std::size_t{64} << 20;
  // JSONL: hand each line on unparsed (RecordWindow::raw), so a pipeline can run
  // JsonRecordParser::parse on other threads; only framing stays on the reading thread.
  bool defer_parse = false;
};

struct RecordWindow {
  // UTF-8 of every text, back to back (records without text add nothing); when `raw`, the
  // bytes of each JSONL line instead, without padding after the last one.
  std::string text;
  std::vector<std::int64_t> text_offsets{0};  // n+1
  std::string id_bytes;  // ids back to back
  std::vector<std::int64_t> id_offsets{0};  // n+1
  std::vector<std::uint8_t> has_id;  // 0: the record has no id
  std::vector<std::int64_t> lines;  // 1-based
  std::vector<std::uint8_t> status;  // Status codes
  // The lines are not parsed yet (ReaderOptions::defer_parse): a record with status kOk holds
  // its raw line and no id; JsonRecordParser::parse gives its text, id and final status.
  bool raw = false;
  std::uint64_t end_offset = 0;  // file bytes consumed when the window was cut
  bool last = false;  // no record follows in this file
  bool damaged = false;  // set on the last window of a damaged file
  std::int64_t damage_line = 0;
  std::string damage_reason;

  std::size_t size() const { return lines.size(); }
};

class WindowReader {
 public:
  // Throws NotFound / IoError when the file cannot be opened.
  explicit WindowReader(const ReaderOptions& options);

  // The next window; false when the file has no more records.
  bool next(RecordWindow& out);

  // Whether the file stopped early, after which line, and why (known once next() is false).
  bool damaged() const { return !source_.damage().empty(); }
  std::int64_t damage_line() const { return line_no_; }
  const std::string& damage_reason() const { return source_.damage(); }

 private:
  void add(const Line& line);
  // Moves the current window to `out` and starts an empty one.
  void hand_out(RecordWindow& out);

  ReaderOptions options_;
  ByteSource source_;
  LineFramer framer_;
  JsonRecordParser parser_;
  RecordWindow current_;
  std::int64_t line_no_;
  std::uint64_t end_line_;  // no line after this one is read
  bool finished_ = false;
};

}  // namespace reader
}  // namespace ignite
