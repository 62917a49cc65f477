#include "image/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

constexpr int kStrip = 32;  // bytes of a vertical-pass strip

// The horizontal pass widens two pixels at a time to (R, G, B, 0, R, G, B, 0) in eight int32
// lanes, so the per-channel sums fall out of one add of the vector's halves; coefficients are
// stored the same way, four a tap. Windows are padded to an even number of taps with zero
// coefficients, and rows are read from a copy with room for a window (and a load) past the end.
// One row's horizontal pass: out[xx] = sum over the window of coefficient * byte, per channel.
// `src` holds the RGB row with padding after it; `expanded` holds each output's coefficients
// repeated for the four lanes of a pixel, zero beyond its taps.
void horizontal_row_scalar(const std::uint8_t* src, const int* first, const std::int32_t* expanded, int window,
                           int out_width, std::uint8_t* out) {
  for (int xx = 0; xx < out_width; ++xx) {
    const std::uint8_t* p = src + 3 * static_cast<std::size_t>(first[xx]);
    const std::int32_t* k = expanded + 4 * static_cast<std::size_t>(xx) * window;
    std::int32_t sum[3] = {kHalf, kHalf, kHalf};
    for (int t = 0; t < window; ++t) {
      sum[0] += k[4 * t] * p[3 * t];
      sum[1] += k[4 * t + 1] * p[3 * t + 1];
      sum[2] += k[4 * t + 2] * p[3 * t + 2];
    }
    for (int c = 0; c < 3; ++c) out[3 * xx + c] = clip8(sum[c]);
  }
}

// One output row of the vertical pass: bytes [begin, end) of the weighted sum of `count` input
// rows `stride` apart.
void vertical_row_scalar(const std::uint8_t* src, std::size_t stride, const std::int32_t* k, int count, int begin,
                         int end, std::uint8_t* out) {
  for (int i = begin; i < end; i += kStrip) {
    const int n = std::min(kStrip, end - i);
    std::int32_t acc[kStrip];
    std::fill(acc, acc + n, kHalf);
    for (int t = 0; t < count; ++t) {
      const std::uint8_t* row = src + static_cast<std::size_t>(t) * stride + i;
      for (int l = 0; l < n; ++l) acc[l] += k[t] * row[l];
    }
    for (int l = 0; l < n; ++l) out[i + l] = clip8(acc[l]);
  }
}

#if defined(__x86_64__)
// The same sums with AVX2 (8 x int32 multiplies; exact, so identical to the scalar ones).
__attribute__((target("avx2"))) void horizontal_row_avx2(const std::uint8_t* src, const int* first,
                                                         const std::int32_t* expanded, int window, int out_width,
                                                         std::uint8_t* out) {
  const __m128i half = _mm_set1_epi32(kHalf);
  // Bytes R0 G0 B0 R1 G1 B1 -> R0 G0 B0 0 R1 G1 B1 0 (-1 selects a zero).
  const __m128i rgb0 = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  for (int xx = 0; xx < out_width; ++xx) {
    const std::uint8_t* p = src + 3 * static_cast<std::size_t>(first[xx]);
    const std::int32_t* k = expanded + 4 * static_cast<std::size_t>(xx) * window;
    __m256i acc = _mm256_setzero_si256();
    for (int t = 0; t < window; t += 2) {  // two taps (pixels) a step
      const __m128i two = _mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 3 * t)), rgb0);
      const __m256i px = _mm256_cvtepu8_epi32(two);
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + 4 * t));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, w));
    }
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    sum = _mm_srai_epi32(_mm_add_epi32(sum, half), kPrecisionBits);
    // Saturating packs clip to 0..255 exactly as clip8 does.
    const int packed = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(sum, sum), sum));
    std::memcpy(out + 3 * xx, &packed, 3);  // little-endian: R, G, B first
  }
}

// Whole strips only: returns where the scalar code takes over.
__attribute__((target("avx2"))) int vertical_row_avx2(const std::uint8_t* src, std::size_t stride,
                                                      const std::int32_t* k, int count, int bytes,
                                                      std::uint8_t* out) {
  const __m256i half = _mm256_set1_epi32(kHalf);
  // packs/packus interleave 128-bit halves; this puts the four vectors' bytes back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int i = 0;
  for (; i + kStrip <= bytes; i += kStrip) {
    __m256i a[4] = {half, half, half, half};
    for (int t = 0; t < count; ++t) {
      const __m256i w = _mm256_set1_epi32(k[t]);
      const std::uint8_t* row = src + static_cast<std::size_t>(t) * stride + i;
      for (int v = 0; v < 4; ++v) {
        const __m256i px = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * v)));
        a[v] = _mm256_add_epi32(a[v], _mm256_mullo_epi32(px, w));
      }
    }
    for (__m256i& v : a) v = _mm256_srai_epi32(v, kPrecisionBits);
    const __m256i packed = _mm256_packus_epi16(_mm256_packs_epi32(a[0], a[1]), _mm256_packs_epi32(a[2], a[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_permutevar8x32_epi32(packed, order));
  }
  return i;
}

// Asked once, on first use (not in a static initialiser, which may run before libgcc has read
// the CPU's features).
bool has_avx2() {
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return avx2;
}
#endif

void horizontal_row(const std::uint8_t* src, const int* first, const std::int32_t* expanded, int window,
                    int out_width, std::uint8_t* out) {
#if defined(__x86_64__)
  if (has_avx2()) return horizontal_row_avx2(src, first, expanded, window, out_width, out);
#endif
  horizontal_row_scalar(src, first, expanded, window, out_width, out);
}

void vertical_row(const std::uint8_t* src, std::size_t stride, const std::int32_t* k, int count, int bytes,
                  std::uint8_t* out) {
  int done = 0;
#if defined(__x86_64__)
  if (has_avx2()) done = vertical_row_avx2(src, stride, k, count, bytes, out);
#endif
  vertical_row_scalar(src, stride, k, count, done, bytes, out);
}

Rgb horizontal(const Rgb& in, int y0, int rows, int width, float extent) {
  const Taps taps = bicubic_taps(in.width, width, extent);
  const int window = (taps.ksize + 1) / 2 * 2;
  std::vector<std::int32_t> expanded(4 * static_cast<std::size_t>(width) * window, 0);
  for (int xx = 0; xx < width; ++xx) {
    for (int t = 0; t < taps.count[xx]; ++t) {
      std::int32_t* k = &expanded[4 * (static_cast<std::size_t>(xx) * window + t)];
      k[0] = k[1] = k[2] = taps.coeffs[static_cast<std::size_t>(xx) * taps.ksize + t];
    }
  }
  const std::size_t row_bytes = 3 * static_cast<std::size_t>(in.width);
  // A window may run past the row, and the last 8-byte load 2 bytes past the window.
  std::vector<std::uint8_t> padded(row_bytes + 3 * static_cast<std::size_t>(window) + 8, 0);
  Rgb out;
  out.resize(width, rows);
  for (int y = 0; y < rows; ++y) {
    std::memcpy(padded.data(), in.row(y0 + y), row_bytes);
    horizontal_row(padded.data(), taps.first.data(), expanded.data(), window, width, out.row(y));
  }
  return out;
}

Rgb vertical(const Rgb& in, int y_offset, const Taps& taps, int height) {
  const int row_bytes = in.width * 3;
  Rgb out;
  out.resize(in.width, height);
  for (int yy = 0; yy < height; ++yy) {
    vertical_row(in.row(taps.first[yy] - y_offset), static_cast<std::size_t>(row_bytes),
                 taps.coeffs.data() + static_cast<std::size_t>(yy) * taps.ksize, taps.count[yy], row_bytes, out.row(yy));
  }
  return out;
}

}  // namespace

Taps bicubic_taps(int in_size, int out_size, float extent) {
  // Pillow works from a float box (0, in_size): the size passes through float first.
  const double scale = static_cast<double>(extent < 0 ? static_cast<float>(in_size) : extent) / out_size;
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

Rgb resize_bicubic(const Rgb& in, int width, int height, float box_width, float box_height) {
  // As Pillow's need_horizontal / need_vertical: a pass runs when its size or its box changes.
  const bool need_horizontal = width != in.width || (box_width >= 0 && box_width != static_cast<float>(width));
  const bool need_vertical = height != in.height || (box_height >= 0 && box_height != static_cast<float>(height));
  if (!need_horizontal && !need_vertical) return in;
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many
  // pixels as the width (its ImagingResampleInner); the order changes the 8-bit intermediate.
  const bool vertical_first = in.height - height > 0 && in.height - height > (in.width - width) * 2;
  const Taps vtaps = bicubic_taps(in.height, height, box_height);
  if (vertical_first) {
    Rgb tall = vertical(in, 0, vtaps, height);
    return need_horizontal ? horizontal(tall, 0, height, width, box_width) : tall;
  }
  if (!need_horizontal) return vertical(in, 0, vtaps, height);
  // Only the rows the vertical pass reads go through the horizontal one.
  const int y0 = need_vertical ? vtaps.first.front() : 0;
  const int y1 = need_vertical ? vtaps.first.back() + vtaps.count.back() : in.height;
  Rgb wide = horizontal(in, y0, y1 - y0, width, box_width);
  return need_vertical ? vertical(wide, y0, vtaps, height) : wide;
}

}  // namespace ignite::image
