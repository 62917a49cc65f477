#include "image/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ignite::image {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS
constexpr std::int32_t kHalf = 1 << (kPrecisionBits - 1);

double bicubic(double x) {  // Pillow's bicubic_filter, a = -0.5
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

std::uint8_t clip8(std::int32_t sum) {
  const std::int32_t v = sum >> kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Pixels of a horizontal window: taps are padded to a multiple of 8 pixels (24 bytes), so the
// dot product runs in whole blocks whose lanes keep the same channel from block to block.
constexpr int kBlockPixels = 8;
constexpr int kBlockBytes = 3 * kBlockPixels;

// One row's horizontal pass: out[xx] = sum over the window of coefficient * byte, per channel.
// `src` holds the row with at least a window of padding after it; `expanded` holds each
// output's coefficients repeated for the three channels, zero beyond its taps.
__attribute__((target_clones("avx2", "default")))
void horizontal_row(const std::uint8_t* src, const int* first, const std::int32_t* expanded, int window_bytes,
                    int out_width, std::uint8_t* out) {
  for (int xx = 0; xx < out_width; ++xx) {
    const std::uint8_t* p = src + 3 * static_cast<std::size_t>(first[xx]);
    const std::int32_t* k = expanded + static_cast<std::size_t>(xx) * window_bytes;
    std::int32_t acc[kBlockBytes] = {};
    for (int b = 0; b < window_bytes; b += kBlockBytes) {
      for (int l = 0; l < kBlockBytes; ++l) acc[l] += k[b + l] * static_cast<std::int32_t>(p[b + l]);
    }
    for (int c = 0; c < 3; ++c) {
      std::int32_t sum = kHalf;
      for (int l = c; l < kBlockBytes; l += 3) sum += acc[l];
      out[3 * xx + c] = clip8(sum);
    }
  }
}

// One output row of the vertical pass: a weighted sum of `count` input rows, all bytes at once.
__attribute__((target_clones("avx2", "default")))
void vertical_row(const std::uint8_t* src, std::size_t stride, const std::int32_t* k, int count, int row_bytes,
                  std::int32_t* acc, std::uint8_t* out) {
  std::fill(acc, acc + row_bytes, kHalf);
  for (int t = 0; t < count; ++t) {
    const std::uint8_t* row = src + static_cast<std::size_t>(t) * stride;
    const std::int32_t w = k[t];
    for (int i = 0; i < row_bytes; ++i) acc[i] += w * static_cast<std::int32_t>(row[i]);
  }
  for (int i = 0; i < row_bytes; ++i) out[i] = clip8(acc[i]);
}

Rgb horizontal(const Rgb& in, int y0, int rows, int width) {
  const Taps taps = bicubic_taps(in.width, width);
  const int window = (taps.ksize + kBlockPixels - 1) / kBlockPixels * kBlockPixels;
  const int window_bytes = 3 * window;
  std::vector<std::int32_t> expanded(static_cast<std::size_t>(width) * window_bytes, 0);
  for (int xx = 0; xx < width; ++xx) {
    for (int t = 0; t < taps.count[xx]; ++t) {
      for (int c = 0; c < 3; ++c) {
        expanded[static_cast<std::size_t>(xx) * window_bytes + 3 * t + c] =
            taps.coeffs[static_cast<std::size_t>(xx) * taps.ksize + t];
      }
    }
  }
  const std::size_t row_bytes = static_cast<std::size_t>(in.width) * 3;
  std::vector<std::uint8_t> padded(row_bytes + window_bytes, 0);  // the last window may run past the row
  Rgb out;
  out.resize(width, rows);
  for (int y = 0; y < rows; ++y) {
    std::memcpy(padded.data(), in.row(y0 + y), row_bytes);
    horizontal_row(padded.data(), taps.first.data(), expanded.data(), window_bytes, width, out.row(y));
  }
  return out;
}

Rgb vertical(const Rgb& in, int y_offset, const Taps& taps, int height) {
  Rgb out;
  out.resize(in.width, height);
  const int row_bytes = in.width * 3;
  std::vector<std::int32_t> acc(static_cast<std::size_t>(row_bytes));
  for (int yy = 0; yy < height; ++yy) {
    vertical_row(in.row(taps.first[yy] - y_offset), static_cast<std::size_t>(row_bytes),
                 taps.coeffs.data() + static_cast<std::size_t>(yy) * taps.ksize, taps.count[yy], row_bytes, acc.data(),
                 out.row(yy));
  }
  return out;
}

}  // namespace

Taps bicubic_taps(int in_size, int out_size) {
  // Pillow works from a float box (0, in_size): the size passes through float first.
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 2.0 * filterscale;
  Taps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<std::size_t>(out_size));
  t.count.resize(static_cast<std::size_t>(out_size));
  t.coeffs.assign(static_cast<std::size_t>(out_size) * t.ksize, 0);
  std::vector<double> k(static_cast<std::size_t>(t.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? k[x] / ww : k[x];
      t.coeffs[static_cast<std::size_t>(xx) * t.ksize + x] =
          static_cast<std::int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    t.first[xx] = xmin;
    t.count[xx] = xmax;
  }
  return t;
}

Rgb resize_bicubic(const Rgb& in, int width, int height) {
  const bool need_horizontal = width != in.width;
  const bool need_vertical = height != in.height;
  if (!need_horizontal && !need_vertical) return in;
  const Taps vtaps = bicubic_taps(in.height, height);
  if (!need_horizontal) return vertical(in, 0, vtaps, height);
  // Only the rows the vertical pass reads go through the horizontal one.
  const int y0 = need_vertical ? vtaps.first.front() : 0;
  const int y1 = need_vertical ? vtaps.first.back() + vtaps.count.back() : in.height;
  Rgb wide = horizontal(in, y0, y1 - y0, width);
  return need_vertical ? vertical(wide, y0, vtaps, height) : wide;
}

}  // namespace ignite::image
