// engine/image: decoders on images written here with libjpeg and libpng (RGB, grey, palette with
// tRNS, 16-bit grey, truncated, zero bytes, garbage, a header-only bomb), EXIF orientation, the
// resize against values Pillow 13 produced for the same inputs, the preprocessor's crop and
// normalisation, and the thread pool (threaded results equal one-thread ones; overlapping
// calls), which TSan checks in tests/engine/run_sanitizers.sh.
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "check.h"
#include "image/decoders.h"
#include "image/exif.h"
#include "image/orient.h"
#include "image/preprocess.h"
#include "image/preprocess_pool.h"
#include "image/resize.h"

namespace {

using ignite::image::Decoded;
using ignite::image::DecodeOptions;
using ignite::image::Rgb;
using ignite::image::Status;
using Bytes = std::vector<std::uint8_t>;

// The test pattern: smooth and varied enough that a wrong tap or rounding shows.
std::uint8_t pattern(int x, int y, int c) { return static_cast<std::uint8_t>((x * 37 + y * 11 + c * 50 + x * y * 13) % 256); }

// A smooth pattern for JPEG, which is lossy on sharp detail.
std::uint8_t smooth(int x, int y, int c) { return static_cast<std::uint8_t>(x * 2 + y * 3 + c * 40); }  // no wrap below 40 x 30

Rgb make_rgb(int w, int h) {
  Rgb im;
  im.resize(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) im.row(y)[3 * x + c] = pattern(x, y, c);
  return im;
}

Bytes write_jpeg(int w, int h, int components, bool progressive = false) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 90, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<JSAMPLE> row(static_cast<std::size_t>(w) * components);
  while (cinfo.next_scanline < cinfo.image_height) {
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < components; ++c) row[static_cast<std::size_t>(x * components + c)] = smooth(x, static_cast<int>(cinfo.next_scanline), c);
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes out(buf, buf + size);
  std::free(buf);
  return out;
}

void append(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void flush(png_structp) {}

// A PNG of `color` type and `depth` with rows from `sample(x, y, channel)`, and optional palette/tRNS.
template <typename Sample>
Bytes write_png(int w, int h, int depth, int color, int channels, Sample sample, const std::vector<png_color>& palette = {},
                const std::vector<png_byte>& trns = {}) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, append, flush);
  png_set_IHDR(png, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), depth, color, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  if (!trns.empty()) png_set_tRNS(png, info, trns.data(), static_cast<int>(trns.size()), nullptr);
  png_write_info(png, info);
  const int bytes = depth / 8;
  std::vector<png_byte> row(static_cast<std::size_t>(w) * channels * bytes);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) {
        const unsigned v = sample(x, y, c);
        png_byte* p = &row[static_cast<std::size_t>((x * channels + c) * bytes)];
        if (bytes == 2) {
          p[0] = static_cast<png_byte>(v >> 8);
          p[1] = static_cast<png_byte>(v & 0xFF);
        } else {
          p[0] = static_cast<png_byte>(v);
        }
      }
    png_write_row(png, row.data());
  }
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

Status decode(const Bytes& b, Decoded& out, DecodeOptions o = {}) { return ignite::image::decode(b.data(), b.size(), o, out); }

void test_jpeg() {
  Decoded d;
  CHECK(decode(write_jpeg(40, 30, 3), d) == Status::kOk);
  CHECK(d.image.width == 40 && d.image.height == 30 && d.orientation == 1);
  // JPEG is lossy: near the pattern, not equal to it.
  int worst = 0;
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 40; ++x) worst = std::max(worst, std::abs(d.image.row(y)[3 * x] - smooth(x, y, 0)));
  CHECK(worst < 16);

  Decoded grey;
  CHECK(decode(write_jpeg(16, 8, 1), grey) == Status::kOk);
  bool replicated = true;
  for (std::size_t i = 0; i < grey.image.pixels.size(); i += 3)
    replicated &= grey.image.pixels[i] == grey.image.pixels[i + 1] && grey.image.pixels[i] == grey.image.pixels[i + 2];
  CHECK(replicated);

  Decoded progressive, baseline;
  CHECK(decode(write_jpeg(33, 17, 3, true), progressive) == Status::kOk);
  CHECK(progressive.image.width == 33 && progressive.image.height == 17);

  // Fast mode: the smallest DCT scale (1/8, 2/8, 4/8) whose short side still covers the target.
  DecodeOptions fast;
  fast.min_short_side = 100;
  Decoded small;
  CHECK(decode(write_jpeg(800, 400, 3), small, fast) == Status::kOk);
  CHECK(small.image.width == 200 && small.image.height == 100);  // 2/8
  fast.min_short_side = 101;
  CHECK(decode(write_jpeg(800, 400, 3), small, fast) == Status::kOk);
  CHECK(small.image.width == 400 && small.image.height == 200 && small.scale == 4);  // 4/8, not 3/8
  CHECK(small.source_width == 800 && small.source_height == 400);
}

void test_png() {
  Decoded d;
  CHECK(decode(write_png(5, 4, 8, PNG_COLOR_TYPE_RGB, 3, pattern), d) == Status::kOk);
  bool exact = d.image.width == 5 && d.image.height == 4;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) exact &= d.image.row(y)[3 * x + c] == pattern(x, y, c);
  CHECK(exact);

  // RGBA: alpha dropped, colour kept.
  CHECK(decode(write_png(3, 2, 8, PNG_COLOR_TYPE_RGBA, 4, [](int x, int y, int c) { return c == 3 ? 0u : pattern(x, y, c); }), d) ==
        Status::kOk);
  CHECK(d.image.row(1)[3 * 2 + 1] == pattern(2, 1, 1));

  // Palette with tRNS: the palette colour, transparency ignored (Pillow's convert("RGB")).
  const std::vector<png_color> palette = {{10, 20, 30}, {200, 100, 50}};
  CHECK(decode(write_png(4, 1, 8, PNG_COLOR_TYPE_PALETTE, 1, [](int x, int, int) { return unsigned(x % 2); }, palette, {0, 255}), d) ==
        Status::kOk);
  CHECK(d.image.pixels == (ignite::image::Bytes{10, 20, 30, 200, 100, 50, 10, 20, 30, 200, 100, 50}));

  // 16-bit grey: Pillow's I;16 -> RGB clips at 255.
  CHECK(decode(write_png(3, 1, 16, PNG_COLOR_TYPE_GRAY, 1, [](int x, int, int) { return std::vector<unsigned>{7, 255, 256}[x]; }), d) ==
        Status::kOk);
  CHECK(d.image.pixels == (ignite::image::Bytes{7, 7, 7, 255, 255, 255, 255, 255, 255}));

  // 16-bit RGB: the high byte.
  CHECK(decode(write_png(1, 1, 16, PNG_COLOR_TYPE_RGB, 3, [](int, int, int c) { return std::vector<unsigned>{0x1234, 0xABFF, 0x00FF}[c]; }), d) ==
        Status::kOk);
  CHECK(d.image.pixels == (ignite::image::Bytes{0x12, 0xAB, 0x00}));

  // Grey + alpha: grey replicated.
  CHECK(decode(write_png(1, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 2, [](int, int, int c) { return c ? 9u : 77u; }), d) == Status::kOk);
  CHECK(d.image.pixels == (ignite::image::Bytes{77, 77, 77}));
}

void test_bad_inputs() {
  const Bytes jpeg = write_jpeg(64, 48, 3);
  const Bytes png = write_png(64, 48, 8, PNG_COLOR_TYPE_RGB, 3, pattern);
  Decoded d;
  CHECK(decode(Bytes{}, d) == Status::kBadImage);
  CHECK(decode(Bytes{'h', 'e', 'l', 'l', 'o'}, d) == Status::kBadImage);
  CHECK(decode(Bytes(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() / 2)), d) == Status::kBadImage);
  CHECK(decode(Bytes(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(png.size() / 2)), d) == Status::kBadImage);
  CHECK(decode(Bytes(jpeg.begin(), jpeg.begin() + 3), d) == Status::kBadImage);
  CHECK(decode(Bytes{'I', 'I', '*', 0, 8, 0, 0, 0}, d) == Status::kUnsupported);  // TIFF

  // Bombs: headers claiming 100000 x 100000 are refused before any pixel is decoded.
  Bytes bomb = png;
  const std::uint8_t dims[8] = {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0};  // IHDR width, height: 100000
  std::memcpy(&bomb[16], dims, 8);
  // The IHDR CRC must still hold, or libpng rejects the header as damaged rather than large.
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 12; i < 29; ++i) {
    crc ^= bomb[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xFFFFFFFFu;
  const std::uint8_t crc_be[4] = {std::uint8_t(crc >> 24), std::uint8_t(crc >> 16), std::uint8_t(crc >> 8), std::uint8_t(crc)};
  std::memcpy(&bomb[29], crc_be, 4);
  CHECK(decode(bomb, d) == Status::kTooLarge);
  DecodeOptions tight;
  tight.max_pixels = 64 * 48 - 1;
  CHECK(decode(jpeg, d, tight) == Status::kTooLarge);
  CHECK(decode(png, d, tight) == Status::kTooLarge);
  tight.max_pixels = 64 * 48;
  CHECK(decode(jpeg, d, tight) == Status::kOk);
}

void test_exif_and_orientation() {
  // Big-endian TIFF: IFD0 at 8 with one entry, orientation (0x0112) SHORT 6.
  const std::uint8_t tiff[] = {'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
                               0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0};
  CHECK(ignite::image::exif_orientation(tiff, sizeof tiff) == 6);
  CHECK(ignite::image::exif_orientation(tiff + 6, sizeof tiff - 6) == 6);  // PNG eXIf: no prefix
  CHECK(ignite::image::exif_orientation(tiff, 20) == 1);                   // truncated
  CHECK(ignite::image::exif_orientation(nullptr, 0) == 1);

  // Where the top-left pixel (value 0) of a 3 x 2 image lands for each of Pillow's transposes.
  const int corner[9][2] = {{}, {0, 0}, {2, 0}, {2, 1}, {0, 1}, {0, 0}, {1, 0}, {1, 2}, {0, 2}};
  for (int o = 1; o <= 8; ++o) {
    Rgb im;
    im.resize(3, 2);
    for (std::size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<std::uint8_t>(i / 3 + 1);
    im.pixels[0] = 0;
    const Rgb out = ignite::image::apply_orientation(std::move(im), o);
    CHECK(out.width == (o >= 5 ? 2 : 3) && out.height == (o >= 5 ? 3 : 2));
    CHECK(out.row(corner[o][1])[3 * corner[o][0]] == 0);
  }
}

struct Known {
  int w, h, out_w, out_h;
  std::vector<std::uint8_t> pixels;
};

void test_resize() {
  // Pillow 13.0 resize(..., BICUBIC) of make_rgb(w, h): down both ways horizontal first, down
  // both ways vertical first, up, vertical only, horizontal only.
  const std::vector<Known> known = {
      {7, 5, 3, 2, {47, 102, 151, 135, 135, 134, 116, 110, 118, 100, 131, 159, 114, 111, 124, 140, 114, 125}},
      {6, 9, 5, 3, {17, 67, 120, 82, 137, 188, 139, 153, 134, 134, 96, 117, 96, 133, 100, 57, 112, 147, 140, 164, 125, 104, 99,
                    118, 99, 102, 158, 144, 111, 112, 101, 137, 149, 156, 159, 77, 129, 147, 161, 133, 136, 154, 110, 157, 139}},
      {3, 3, 5, 4, {0, 46, 96, 10, 60, 110, 36, 86, 136, 61, 111, 161, 75, 125, 175, 4, 53, 103, 19, 69, 119, 50, 100, 150, 81, 131,
                    181, 98, 148, 198, 11, 61, 111, 33, 83, 133, 72, 122, 172, 111, 161, 211, 132, 182, 232, 18, 68, 118, 42, 92,
                    142, 86, 136, 186, 131, 181, 231, 155, 205, 255}},
      {8, 3, 8, 1, {11, 61, 111, 61, 111, 161, 111, 161, 211, 161, 133, 83, 133, 83, 133, 83, 133, 105, 133, 105, 155, 105, 77, 127}},
      {9, 2, 4, 2, {25, 75, 125, 106, 164, 210, 185, 155, 93, 54, 54, 107, 45, 103, 156, 158, 145, 83, 71, 58, 104, 113, 171, 221}},
  };
  for (const Known& k : known) {
    const Rgb out = ignite::image::resize_bicubic(make_rgb(k.w, k.h), k.out_w, k.out_h);
    CHECK(out.width == k.out_w && out.height == k.out_h);
    CHECK(std::vector<std::uint8_t>(out.pixels.begin(), out.pixels.end()) == k.pixels);
  }
  // Coefficients of every output sum to one in fixed point (up to rounding of each tap).
  const ignite::image::Taps t = ignite::image::bicubic_taps(1000, 224);
  for (std::size_t xx = 0; xx < t.first.size(); ++xx) {
    std::int64_t sum = 0;
    for (int i = 0; i < t.ksize; ++i) sum += t.coeffs[xx * static_cast<std::size_t>(t.ksize) + static_cast<std::size_t>(i)];
    CHECK(std::llabs(sum - (1 << 22)) <= t.ksize);
  }
  // A wide resize exercises the vector kernels' full strips and the scalar tail together.
  const Rgb wide = ignite::image::resize_bicubic(make_rgb(301, 97), 211, 45);
  CHECK(wide.width == 211 && wide.height == 45 && wide.pixels.size() == 211u * 45 * 3);
}

void test_preprocess() {
  ignite::image::Spec spec;
  spec.shortest_edge = 8;
  spec.crop_height = 8;
  spec.crop_width = 10;
  const ignite::image::Preprocessor pre(spec, ignite::image::Mode::kExact, 1u << 30);
  int w = 0, h = 0;
  pre.resize_target(30, 20, w, h);
  CHECK(w == 12 && h == 8);
  pre.resize_target(3, 1000, w, h);
  CHECK(w == 8 && h == 2666);
  // An 8 x 8 result centred in a 10-wide crop: columns 0 and 9 are zero padding.
  const Bytes png = write_png(20, 20, 8, PNG_COLOR_TYPE_RGB, 3, pattern);
  std::vector<float> out(pre.values_per_image(), -1.0f);
  CHECK(pre.process(png.data(), png.size(), out.data()) == Status::kOk);
  const float zero_red = (0.0f - static_cast<float>(spec.mean[0])) / static_cast<float>(spec.std[0]);
  CHECK(out[0] == zero_red && out[9] == zero_red && out[1] != zero_red);
  CHECK(pre.process(png.data(), 10, out.data()) == Status::kBadImage);
  bool zeros = true;
  for (float v : out) zeros &= v == 0.0f;
  CHECK(zeros);

  spec.do_center_crop = false;
  CHECK(ignite_test::throws_invalid([&] { ignite::image::Preprocessor(spec, ignite::image::Mode::kExact, 1); }));
}

void test_pool() {
  ignite::image::Spec spec;
  const ignite::image::Preprocessor pre(spec, ignite::image::Mode::kExact, 1u << 30);
  std::vector<Bytes> images;
  for (int i = 0; i < 24; ++i) {
    if (i % 5 == 4) {
      images.push_back(Bytes{'n', 'o', 'p', 'e'});
    } else if (i % 2) {
      images.push_back(write_jpeg(150 + 13 * i, 120 + 7 * i, 3));
    } else {
      images.push_back(write_png(140 + 9 * i, 260 - 5 * i, 8, PNG_COLOR_TYPE_RGB, 3, pattern));
    }
  }
  std::vector<const std::uint8_t*> data;
  std::vector<std::size_t> sizes;
  for (const Bytes& b : images) {
    data.push_back(b.data());
    sizes.push_back(b.size());
  }
  const std::size_t per = pre.values_per_image(), n = images.size();
  std::vector<float> one(n * per);
  std::vector<Status> one_status(n);
  ignite::image::PreprocessPool single(pre, 1);
  single.process(data.data(), sizes.data(), n, one.data(), one_status.data());
  for (std::size_t i = 0; i < n; ++i) CHECK((one_status[i] == Status::kOk) == (i % 5 != 4));

  ignite::image::PreprocessPool pool(pre, 4);
  CHECK(pool.threads() == 4);
  // Two callers at once: each call waits its turn and gets the same result.
  auto call = [&](std::vector<float>& out, std::vector<Status>& status) {
    for (int rep = 0; rep < 3; ++rep) pool.process(data.data(), sizes.data(), n, out.data(), status.data());
  };
  std::vector<float> a(n * per), b(n * per);
  std::vector<Status> sa(n), sb(n);
  std::thread other(call, std::ref(b), std::ref(sb));
  call(a, sa);
  other.join();
  CHECK(a == one && b == one && sa == one_status && sb == one_status);
  pool.process(data.data(), sizes.data(), 0, nullptr, nullptr);  // nothing to do
}

}  // namespace

int main() {
  test_jpeg();
  test_png();
  test_bad_inputs();
  test_exif_and_orientation();
  test_resize();
  test_preprocess();
  test_pool();
  return ignite_test::finish("test_image");
}
