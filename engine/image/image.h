// Owns the types every image stage shares: a decoded RGB image, the decode options and the
// per-image status (a bad image is data, never an exception).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace ignite::image {

// The codes Python maps to ignite.images.preprocess's status strings, in this order.
enum class Status : std::uint8_t { kOk = 0, kBadImage = 1, kUnsupported = 2, kTooLarge = 3 };

// A vector allocator that leaves new elements uninitialised: pixel buffers are written whole by
// the decoder or resize that sizes them, so zero-filling them first is wasted work.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using Bytes = std::vector<std::uint8_t, UninitializedAllocator<std::uint8_t>>;

// Packed 8-bit RGB rows, top to bottom, width * 3 bytes each.
struct Rgb {
  int width = 0;
  int height = 0;
  Bytes pixels;

  void resize(int w, int h) {
    width = w;
    height = h;
    pixels.resize(static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * 3);
  }
  std::uint8_t* row(int y) { return pixels.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(width) * 3; }
  const std::uint8_t* row(int y) const {
    return pixels.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(width) * 3;
  }
};

struct DecodeOptions {
  // Images with more pixels than this (read from the header) are refused before decoding.
  std::uint64_t max_pixels = 89'478'485;
  // > 0: a JPEG may be decoded at a reduced DCT scale (libjpeg's scaled IDCT) as long as its
  // short side stays >= this. 0: always full size, as Pillow decodes.
  int min_short_side = 0;
};

// A decoder's result: the pixels and the EXIF orientation (1..8; 1 when absent or invalid).
struct Decoded {
  Rgb image;
  int orientation = 1;
  // The image's own size; larger than `image` when a JPEG was decoded at scale / 8.
  int source_width = 0;
  int source_height = 0;
  int scale = 8;
};

// True when width x height is acceptable under `max_pixels` (and non-empty).
inline bool pixels_within(std::uint64_t width, std::uint64_t height, std::uint64_t max_pixels) {
  return width > 0 && height > 0 && width * height <= max_pixels;
}

}  // namespace ignite::image
