#include "image/orient.h"

#include <cstring>
#include <utility>

namespace ignite::image {

Rgb apply_orientation(Rgb&& in, int orientation) {
  if (orientation < 2 || orientation > 8) return std::move(in);
  const int w = in.width, h = in.height;
  const bool swap = orientation >= 5;  // 5..8 transpose the axes
  Rgb out;
  out.resize(swap ? h : w, swap ? w : h);
  for (int y = 0; y < out.height; ++y) {
    std::uint8_t* dst = out.row(y);
    for (int x = 0; x < out.width; ++x) {
      // The source pixel of output (x, y) for each of Pillow's transposes.
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; break;                      // FLIP_LEFT_RIGHT
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;      // ROTATE_180
        case 4: sy = h - 1 - y; break;                      // FLIP_TOP_BOTTOM
        case 5: sx = y; sy = x; break;                      // TRANSPOSE
        case 6: sx = y; sy = h - 1 - x; break;              // ROTATE_270
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;      // TRANSVERSE
        default: sx = w - 1 - y; sy = x; break;             // 8: ROTATE_90
      }
      std::memcpy(dst + 3 * x, in.row(sy) + 3 * sx, 3);
    }
  }
  return out;
}

}  // namespace ignite::image
