#include "image/exif.h"

#include <cstring>

namespace ignite::image {
namespace {

struct Reader {
  const std::uint8_t* p;
  std::size_t size;
  bool little;

  bool u16(std::size_t at, unsigned& v) const {
    if (at > size || size - at < 2) return false;
    v = little ? (p[at] | p[at + 1] << 8) : (p[at] << 8 | p[at + 1]);
    return true;
  }
  bool u32(std::size_t at, std::uint32_t& v) const {
    if (at > size || size - at < 4) return false;
    const std::uint32_t b0 = p[at], b1 = p[at + 1], b2 = p[at + 2], b3 = p[at + 3];
    v = little ? (b0 | b1 << 8 | b2 << 16 | b3 << 24) : (b0 << 24 | b1 << 16 | b2 << 8 | b3);
    return true;
  }
};

}  // namespace

int exif_orientation(const std::uint8_t* data, std::size_t size) {
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) {
    data += 6;
    size -= 6;
  }
  if (size < 8) return 1;
  Reader r{data, size, false};
  if (data[0] == 'I' && data[1] == 'I') {
    r.little = true;
  } else if (!(data[0] == 'M' && data[1] == 'M')) {
    return 1;
  }
  unsigned magic = 0, count = 0;
  std::uint32_t ifd = 0;
  if (!r.u16(2, magic) || magic != 42 || !r.u32(4, ifd) || !r.u16(ifd, count)) return 1;
  // Only IFD0 holds the orientation of the main image.
  for (unsigned i = 0; i < count; ++i) {
    const std::size_t entry = static_cast<std::size_t>(ifd) + 2 + 12 * static_cast<std::size_t>(i);
    unsigned tag = 0, type = 0, value = 0;
    if (!r.u16(entry, tag) || !r.u16(entry + 2, type)) return 1;
    if (tag != 0x0112) continue;
    if (type != 3 || !r.u16(entry + 8, value)) return 1;  // SHORT, stored inline
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

}  // namespace ignite::image
