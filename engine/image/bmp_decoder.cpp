// Windows BMP, parsed here (no library needed): uncompressed 1, 4 and 8-bit palette images and
// 24 and 32-bit ones (BI_RGB, or BI_BITFIELDS with the usual byte masks), bottom-up or top-down,
// as Pillow reads them; RLE, 16-bit and other masks are unsupported_image.
#include <cstring>

#include "image/decoders.h"

namespace ignite::image {
namespace {

std::uint32_t u32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
unsigned u16(const std::uint8_t* p) { return p[0] | p[1] << 8; }

constexpr std::uint32_t kRgb = 0, kBitfields = 3;

}  // namespace

Status decode_bmp(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out) {
  if (size < 26 || data[0] != 'B' || data[1] != 'M') return Status::kBadImage;
  const std::uint32_t offset = u32(data + 10), header = u32(data + 14);
  const std::uint8_t* h = data + 14;
  std::int64_t width = 0, height = 0;
  unsigned bits = 0, palette_entry = 4;
  std::uint32_t compression = kRgb, colors = 0;
  if (header == 12) {  // OS/2 core header: 16-bit sizes, 3-byte palette entries
    width = u16(h + 4);
    height = u16(h + 6);
    bits = u16(h + 10);
    palette_entry = 3;
  } else if (header >= 40 && header <= 124 && size >= 14 + std::size_t(header)) {
    width = static_cast<std::int32_t>(u32(h + 4));
    height = static_cast<std::int32_t>(u32(h + 8));
    bits = u16(h + 14);
    compression = u32(h + 16);
    colors = u32(h + 32);
  } else {
    return Status::kBadImage;
  }
  const bool top_down = height < 0;
  if (top_down) height = -height;
  if (width <= 0 || height <= 0) return Status::kBadImage;
  if (!pixels_within(std::uint64_t(width), std::uint64_t(height), options.max_pixels)) return Status::kTooLarge;
  if (compression == kBitfields && bits == 32) {
    // Masks follow a 40-byte header (or sit inside a larger one) at the same place.
    if (size < 14 + 40 + 12) return Status::kBadImage;
    if (u32(h + 40) != 0xFF0000 || u32(h + 44) != 0xFF00 || u32(h + 48) != 0xFF) return Status::kUnsupported;
  } else if (compression != kRgb) {
    return Status::kUnsupported;
  }
  if (bits != 1 && bits != 4 && bits != 8 && bits != 24 && bits != 32) return Status::kUnsupported;

  std::uint8_t palette[256][3] = {};
  if (bits <= 8) {
    const std::uint32_t entries = colors && colors <= (1u << bits) ? colors : (1u << bits);
    const std::size_t at = 14 + std::size_t(header) + (compression == kBitfields ? 12 : 0);
    if (at + std::size_t(entries) * palette_entry > size) return Status::kBadImage;
    for (std::uint32_t i = 0; i < entries; ++i) {
      const std::uint8_t* e = data + at + std::size_t(i) * palette_entry;
      palette[i][0] = e[2];
      palette[i][1] = e[1];
      palette[i][2] = e[0];
    }
  }
  const std::size_t stride = ((std::size_t(width) * bits + 31) / 32) * 4;
  if (offset > size || (size - offset) / stride < std::size_t(height)) return Status::kBadImage;  // truncated

  out.image.resize(static_cast<int>(width), static_cast<int>(height));
  for (std::int64_t y = 0; y < height; ++y) {
    const std::uint8_t* src = data + offset + stride * std::size_t(top_down ? y : height - 1 - y);
    std::uint8_t* dst = out.image.row(static_cast<int>(y));
    for (std::int64_t x = 0; x < width; ++x, dst += 3) {
      if (bits >= 24) {
        const std::uint8_t* p = src + x * (bits / 8);
        dst[0] = p[2];
        dst[1] = p[1];
        dst[2] = p[0];
        continue;
      }
      const std::size_t bit = std::size_t(x) * bits;
      const unsigned index = (src[bit / 8] >> (8 - bits - bit % 8)) & ((1u << bits) - 1);
      std::memcpy(dst, palette[index], 3);
    }
  }
  return Status::kOk;
}

}  // namespace ignite::image
