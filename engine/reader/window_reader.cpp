#include "reader/window_reader.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/reserve.h"

namespace ignite {
namespace reader {

namespace {

// bytes.strip() is empty in Python: only ASCII whitespace (space, \t, \n, \r, \v, \f).
bool is_blank(std::string_view bytes) {
  for (const char c : bytes) {
    if (c != ' ' && (c < '\t' || c > '\r')) return false;
  }
  return true;
}

void clear(RecordWindow& w) {
  w.text.clear();
  w.text_offsets.assign(1, 0);
  w.id_bytes.clear();
  w.id_offsets.assign(1, 0);
  w.has_id.clear();
  w.lines.clear();
  w.status.clear();
  w.end_offset = 0;
  w.last = w.damaged = false;
  w.damage_line = 0;
  w.damage_reason.clear();
}

void reserve_like(RecordWindow& w, const RecordWindow& last) {
  const std::size_t n = last.size();
  reserve_reusable(w.text, last.text.size() + kPadding);  // room for the padding a deferred parse adds
  w.text_offsets.reserve(n + 1);
  w.id_bytes.reserve(last.id_bytes.size());
  w.id_offsets.reserve(n + 1);
  w.has_id.reserve(n);
  w.lines.reserve(n);
  w.status.reserve(n);
}

}  // namespace

WindowReader::WindowReader(const ReaderOptions& options)
    : options_(options),
      source_(options.path, options.compression, options.read_chunk),
      framer_(source_, options.skip_lines, options.max_line_bytes),
      parser_(options.field, options.id_field),
      line_no_(static_cast<std::int64_t>(options.skip_lines)),
      end_line_(options.skip_lines +
                std::min(options.max_lines, std::numeric_limits<std::uint64_t>::max() - options.skip_lines)) {}

void WindowReader::add(const Line& line) {
  RecordWindow& w = current_;
  Status status = Status::kOk;
  bool has_id = false;
  const std::size_t text_mark = w.text.size();
  if (line.too_long) {
    status = Status::kLineTooLong;
  } else if (options_.jsonl && options_.defer_parse) {
    w.text.append(line.bytes);  // parsed later, off this thread
  } else if (options_.jsonl) {
    status = parser_.parse(line.bytes, w.text, w.id_bytes, has_id);
  } else if (is_valid_utf8(line.bytes)) {
    w.text.append(line.bytes);
  } else {
    status = Status::kInvalidUtf8;
  }
  if (status != Status::kOk) w.text.resize(text_mark);
  w.text_offsets.push_back(static_cast<std::int64_t>(w.text.size()));
  w.id_offsets.push_back(static_cast<std::int64_t>(w.id_bytes.size()));
  w.has_id.push_back(has_id ? 1 : 0);
  w.lines.push_back(line_no_);
  w.status.push_back(static_cast<std::uint8_t>(status));
}

bool WindowReader::next(RecordWindow& out) {
  if (finished_) return false;
  Line line;
  while (static_cast<std::uint64_t>(line_no_) < end_line_ && framer_.next(line)) {
    ++line_no_;
    if (!line.too_long && options_.jsonl && is_blank(line.bytes)) continue;  // not a record
    // A full window goes out when the next record arrives, so the one that ends the file is
    // known to be the last.
    if (current_.size() >= options_.window_records) {
      current_.end_offset = line.consumed;
      hand_out(out);
      add(line);
      return true;
    }
    add(line);
  }
  finished_ = true;
  if (current_.size() == 0) return false;
  current_.end_offset = source_.consumed();
  current_.last = true;
  current_.damaged = damaged();
  current_.damage_line = line_no_;
  current_.damage_reason = source_.damage();
  hand_out(out);
  return true;
}

void WindowReader::hand_out(RecordWindow& out) {
  current_.raw = options_.jsonl && options_.defer_parse;
  std::swap(out, current_);
  clear(current_);
  // A caller may move the arrays out of the window it was handed (the pipeline does): sized
  // like that one, the next window does not grow (and copy itself) from nothing.
  reserve_like(current_, out);
}

}  // namespace reader
}  // namespace ignite
