// The format decoders, one source file each, and the dispatcher that sniffs the format. Every
// decoder turns any input into a status (never a crash or an exception for bad data) and, on
// kOk, RGB pixels converted as Pillow's convert("RGB") converts that format's modes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "image/image.h"

namespace ignite::image {

// An encoded image in memory, read front to back by a library's read callback (libpng, giflib).
struct ByteSource {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t at = 0;

  std::size_t left() const { return size - at; }
  // Copies min(n, left()) bytes to `out`; returns how many.
  std::size_t take(void* out, std::size_t n) {
    n = std::min(n, left());
    std::memcpy(out, data + at, n);
    at += n;
    return n;
  }
};

Status decode_jpeg(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out);
Status decode_png(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out);
Status decode_webp(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out);
Status decode_gif(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out);
Status decode_bmp(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out);

// Picks the decoder from the leading bytes (never from a file name): kBadImage when no known
// signature matches (a text file named .jpg), kUnsupported for formats Pillow reads and Ignite
// does not (TIFF, ICO, ...).
Status decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out);

}  // namespace ignite::image
