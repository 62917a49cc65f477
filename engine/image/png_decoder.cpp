// PNG through libpng, converted as Pillow's PNG modes convert to RGB: grey (1, 2, 4 bits scaled
// to 0..255), grey 16-bit ("I;16": values above 255 become 255), palette (tRNS ignored), alpha
// dropped, 16-bit colour kept by its high byte. No gamma or colour-profile correction (Pillow
// applies none).
//
// libpng reports errors by longjmp: decode_inner, which calls setjmp, holds no object with a
// destructor; the read struct and buffers are owned by decode_png.
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "image/decoders.h"
#include "image/exif.h"

namespace ignite::image {
namespace {

void read_bytes(png_structp png, png_bytep out, png_size_t count) {
  auto* src = static_cast<ByteSource*>(png_get_io_ptr(png));
  if (count > src->left()) png_error(png, "truncated");  // longjmps
  src->take(out, count);
}

void on_error(png_structp png, png_const_charp) { png_longjmp(png, 1); }
void on_warning(png_structp, png_const_charp) {}

// eXIf may come before the pixels or after them (Pillow reads both).
void read_exif(png_structp png, png_infop info, Decoded& out) {
  png_uint_32 exif_size = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &exif_size, &exif) && exif) out.orientation = exif_orientation(exif, exif_size);
}

struct Reader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~Reader() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

// Only trivially destructible locals here (see the file comment).
Status decode_inner(Reader& r, ByteSource& src, const DecodeOptions& options, Decoded& out,
                    std::vector<png_bytep>& rows, std::vector<std::uint8_t>& wide) {
  png_structp png = r.png;
  png_infop info = r.info;
  if (setjmp(png_jmpbuf(png))) return Status::kBadImage;
  png_set_read_fn(png, &src, read_bytes);
  png_read_info(png, info);
  png_uint_32 width = 0, height = 0;
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &depth, &color, &interlace, nullptr, nullptr);
  if (!pixels_within(width, height, options.max_pixels)) return Status::kTooLarge;
  read_exif(png, info, out);
  const bool grey16 = color == PNG_COLOR_TYPE_GRAY && depth == 16;
  if (!grey16) png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);  // adds alpha from tRNS ...
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  png_set_strip_alpha(png);  // ... dropped here, as Pillow's convert("RGB") drops it
  if ((color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) && !grey16) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (grey16 ? 2 : 3) * static_cast<std::size_t>(width)) return Status::kUnsupported;
  out.image.resize(static_cast<int>(width), static_cast<int>(height));
  rows.resize(height);
  if (grey16) wide.resize(static_cast<std::size_t>(width) * height * 2);
  for (png_uint_32 y = 0; y < height; ++y) {
    rows[y] = grey16 ? wide.data() + static_cast<std::size_t>(y) * width * 2 : out.image.row(static_cast<int>(y));
  }
  png_read_image(png, rows.data());
  if (grey16) {
    for (png_uint_32 y = 0; y < height; ++y) {
      const std::uint8_t* in = rows[y];
      std::uint8_t* dst = out.image.row(static_cast<int>(y));
      for (png_uint_32 x = 0; x < width; ++x, in += 2, dst += 3) {
        const std::uint8_t v = in[0] == 0 ? in[1] : 255;  // big-endian samples; Pillow's I;16 -> RGB clips
        dst[0] = dst[1] = dst[2] = v;
      }
    }
  }
  // The pixels are complete: damage after them (a missing IEND) does not make the image bad,
  // it only hides an eXIf chunk placed there.
  if (setjmp(png_jmpbuf(png))) return Status::kOk;
  png_read_end(png, info);
  read_exif(png, info, out);
  return Status::kOk;
}

}  // namespace

Status decode_png(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out) {
  Reader r;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, on_error, on_warning);
  if (!r.png) return Status::kBadImage;
  r.info = png_create_info_struct(r.png);
  if (!r.info) return Status::kBadImage;
  ByteSource src{data, size};
  std::vector<png_bytep> rows;
  std::vector<std::uint8_t> wide;
  return decode_inner(r, src, options, out, rows, wide);
}

}  // namespace ignite::image
