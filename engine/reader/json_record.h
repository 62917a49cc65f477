// One JSONL record to its text and id, with the Python reader's results and statuses
// (ignite.io.readers.RecordReader._parse_json over orjson): every line is validated whole, a
// repeated key's last value wins, ids that are not strings are written as orjson.dumps writes
// them, integers beyond 64 bits read as floats.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ignite {
namespace reader {

// Why a record has no text; the values are the codes the bindings hand to Python.
enum class Status : std::uint8_t {
  kOk,
  kInvalidUtf8,
  kBadJson,
  kNotAnObject,
  kMissingId,
  kMissingField,
  kFieldNull,
  kFieldNotString,
  kLineTooLong,
};
constexpr int kStatusCount = 9;
// The status names of the Python reader ("ok", "invalid_utf8", ...).
const char* status_name(Status status);

bool is_valid_utf8(std::string_view bytes);

class JsonRecordParser {
 public:
  // `field` and `id_field` are dotted paths into nested objects; an empty id_field: no ids.
  JsonRecordParser(const std::string& field, const std::string& id_field);
  ~JsonRecordParser();
  JsonRecordParser(const JsonRecordParser&) = delete;
  JsonRecordParser& operator=(const JsonRecordParser&) = delete;

  // Parses `line` (followed by kPadding readable bytes): appends the text to `text` and the
  // id, if any, to `id` (has_id tells whether there is one).
  Status parse(std::string_view line, std::string& text, std::string& id, bool& has_id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reader
}  // namespace ignite
