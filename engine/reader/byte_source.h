// Decompressed bytes of one input file in chunks (plain, zstd frames, gzip members), cut and
// checked exactly as the Python reader does (ignite.io.readers._FrameStream): the input is read
// `read_chunk` bytes at a time and each read is decoded whole, so chunk boundaries, the
// compressed bytes consumed and the damage reported match it byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace ignite {
namespace reader {

enum class Compression { kNone, kZstd, kGzip };

// Every chunk is followed by this many readable bytes, so a parser that reads past the end of
// its input (simdjson) can work on lines in place.
constexpr std::size_t kPadding = 64;

struct Chunk {
  std::string_view bytes;
  std::uint64_t consumed = 0;  // bytes of the file read so far
};

class ByteSource {
 public:
  // Throws NotFound or IoError when the file cannot be opened.
  ByteSource(const std::string& path, Compression compression, std::size_t read_chunk);
  ~ByteSource();
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  // The next non-empty chunk; false at the end of the bytes. Everything decoded before damage
  // is handed out first; damage() then says why the bytes stopped (empty for a clean end).
  bool next(Chunk& out);
  const std::string& damage() const { return damage_; }
  std::uint64_t consumed() const { return consumed_; }

  // One frame (zstd) or member (gzip) decoder; see byte_source.cpp.
  class Decoder;

 private:
  // Reads up to read_chunk_ bytes into in_ (fewer only at the end of the file).
  std::size_t read_input();
  bool next_plain(Chunk& out);
  // Zeroes the kPadding bytes after the chunk's `used` bytes in out_.
  void pad_chunk(std::size_t used);

  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::unique_ptr<Decoder> decoder_;  // null for plain files
  std::size_t read_chunk_;
  std::string in_;  // read_chunk_ bytes read, plus kPadding (a plain file's chunk is in_)
  std::string out_;  // decoded bytes of the current chunk, then kPadding; a buffer that only grows
  std::uint64_t consumed_ = 0;
  bool in_frame_ = false;  // bytes of an unfinished frame were read
  bool ended_ = false;
  std::string damage_;
};

}  // namespace reader
}  // namespace ignite
