// Owns the resize: Pillow's Image.resize(size, BICUBIC) (reducing_gap None), byte for byte.
// Pillow 13.0 is the reference (its pass order differs from 12's for images that shrink most
// in height).
#pragma once

#include <cstdint>
#include <vector>

#include "image/image.h"

namespace ignite::image {

// One axis's filter as Pillow's precompute_coeffs + normalize_coeffs_8bpc build it: for each
// output position the first input index, the tap count, and `ksize` fixed-point coefficients
// (22 fractional bits, rounded half away from zero).
struct Taps {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<std::int32_t> coeffs;  // out_size * ksize
};

// `extent` is the part of the input axis to resize, [0, extent) (Pillow's box); a negative one
// means the whole axis.
Taps bicubic_taps(int in_size, int out_size, float extent = -1.0f);

// `in` resized to width x height. Two passes as Pillow 13 makes them, each rounding to 8 bits:
// horizontal (over the rows the vertical pass reads) then vertical, or vertical first when the
// height shrinks by more than twice as many pixels as the width; a pass whose size does not
// change is skipped, as Pillow skips it. Integer arithmetic throughout, so the result does not
// depend on the order the sums are taken in, which lets the loops vectorise.
// `box_width` x `box_height` (Pillow's box (0, 0, w, h)): the part of `in` to resize, which may
// end inside a pixel; negative means all of it. Fast mode uses it for a JPEG decoded at a reduced
// scale, whose last row and column are only partly image.
Rgb resize_bicubic(const Rgb& in, int width, int height, float box_width = -1.0f, float box_height = -1.0f);

}  // namespace ignite::image
