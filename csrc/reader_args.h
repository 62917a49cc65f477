// Python's names for the reader's input options, parsed once for every binding that opens files
// (NativeReader, IngestPipeline): a wrong name is an InvalidArgument naming the caller.
#pragma once

#include <string>

#include "core/error.h"
#include "reader/window_reader.h"

namespace ignite {

inline reader::Compression parse_compression(const std::string& caller, const std::string& name) {
  if (name == "none") return reader::Compression::kNone;
  if (name == "zstd") return reader::Compression::kZstd;
  if (name == "gzip") return reader::Compression::kGzip;
  throw InvalidArgument(caller + ": compression must be 'none', 'zstd' or 'gzip', not '" + name + "'");
}

// True for JSONL, false for plain text (one record a line).
inline bool parse_is_jsonl(const std::string& caller, const std::string& format) {
  if (format != "jsonl" && format != "txt") {
    throw InvalidArgument(caller + ": format must be 'jsonl' or 'txt', not '" + format + "'");
  }
  return format == "jsonl";
}

}  // namespace ignite
