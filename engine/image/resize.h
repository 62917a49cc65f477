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

Taps bicubic_taps(int in_size, int out_size);

// `in` resized to width x height. Two passes as Pillow 13 makes them, each rounding to 8 bits:
// horizontal (over the rows the vertical pass reads) then vertical, or vertical first when the
// height shrinks by more than twice as many pixels as the width; a pass whose size does not
// change is skipped, as Pillow skips it. Integer arithmetic throughout, so the result does not
// depend on the order the sums are taken in, which lets the loops vectorise.
Rgb resize_bicubic(const Rgb& in, int width, int height);

}  // namespace ignite::image
