// JPEG through libjpeg(-turbo), set up as Pillow's decoder sets it up (the library defaults:
// islow IDCT, fancy upsampling), so the pixels are the ones Pillow gets.
//
// libjpeg reports errors by longjmp. The function that calls setjmp (decode_inner) therefore
// holds no object with a destructor; everything that owns memory lives in decode_jpeg, above it,
// and is released there whether decode_inner returned or threw.
// jpeglib.h needs size_t and FILE declared before it.
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>
#include <jerror.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "image/decoders.h"
#include "image/exif.h"

namespace ignite::image {
namespace {

struct ErrorManager {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
};

void on_error(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<ErrorManager*>(cinfo->err)->jump, 1);
}

void ignore_message(j_common_ptr) {}  // warnings (corrupt data libjpeg recovers from) as Pillow: ignored

// A memory source whose end is an error: Pillow calls a file that ends early truncated, where
// libjpeg's own memory source would pad it with a fake EOI and decode grey.
void init_source(j_decompress_ptr) {}
boolean fill_input_buffer(j_decompress_ptr cinfo) {
  cinfo->err->msg_code = JERR_INPUT_EOF;
  cinfo->err->error_exit(reinterpret_cast<j_common_ptr>(cinfo));
  return FALSE;
}
void skip_input_data(j_decompress_ptr cinfo, long count) {
  if (count <= 0) return;
  jpeg_source_mgr* src = cinfo->src;
  if (static_cast<std::size_t>(count) > src->bytes_in_buffer) fill_input_buffer(cinfo);
  src->next_input_byte += count;
  src->bytes_in_buffer -= static_cast<std::size_t>(count);
}
void term_source(j_decompress_ptr) {}

// Owns the decompressor: destroyed however decoding ends.
struct Decompressor {
  jpeg_decompress_struct cinfo{};
  ErrorManager error{};
  jpeg_source_mgr source{};
  bool created = false;
  ~Decompressor() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// The smallest M/8 scale whose output keeps the short side >= min_short (libjpeg rounds up).
// Only 1/8, 2/8 and 4/8: the other scales' IDCTs (and the doubled sizes they give subsampled
// chroma: 10x10, 12x12, 14x14) are plain C in libjpeg-turbo and cost more than they save.
unsigned reduced_scale(JDIMENSION width, JDIMENSION height, int min_short) {
  const std::uint64_t short_side = width < height ? width : height;
  for (unsigned m = 1; m < 8; m *= 2) {
    if ((short_side * m + 7) / 8 >= static_cast<std::uint64_t>(min_short)) return m;
  }
  return 8;
}

// Adobe-convention CMYK (stored inverted, as Pillow's "CMYK;I" rawmode assumes) to RGB with
// Pillow's cmyk2rgb arithmetic.
void cmyk_row_to_rgb(const JSAMPLE* in, std::uint8_t* out, JDIMENSION width) {
  for (JDIMENSION x = 0; x < width; ++x, in += 4, out += 3) {
    const int nk = in[3];  // 255 - k with k = 255 - stored
    for (int c = 0; c < 3; ++c) {
      const int v = 255 - in[c];
      const int t = v * nk + 128;
      const int r = nk - (((t >> 8) + t) >> 8);
      out[c] = static_cast<std::uint8_t>(r < 0 ? 0 : r);
    }
  }
}

// Holds only trivially destructible locals (see the file comment). `row` is scratch for
// grey and CMYK rows; `out` and `row` are resized here and freed by the caller.
Status decode_inner(Decompressor& d, const DecodeOptions& options, Decoded& out, std::vector<JSAMPLE>& row) {
  jpeg_decompress_struct& cinfo = d.cinfo;
  if (setjmp(d.error.jump)) return Status::kBadImage;
  jpeg_create_decompress(&cinfo);
  d.created = true;
  cinfo.src = &d.source;
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) return Status::kBadImage;
  if (!pixels_within(cinfo.image_width, cinfo.image_height, options.max_pixels)) {
    return cinfo.image_width && cinfo.image_height ? Status::kTooLarge : Status::kBadImage;
  }
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      out.orientation = exif_orientation(m->data, m->data_length);
      break;  // Pillow keeps the first EXIF block
    }
  }
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  const bool grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  if (cinfo.num_components != (cmyk ? 4 : grey ? 1 : 3)) return Status::kUnsupported;
  cinfo.out_color_space = cmyk ? JCS_CMYK : grey ? JCS_GRAYSCALE : JCS_RGB;
  if (options.min_short_side > 0) {
    cinfo.scale_num = reduced_scale(cinfo.image_width, cinfo.image_height, options.min_short_side);
    cinfo.scale_denom = 8;
  }
  jpeg_start_decompress(&cinfo);
  out.source_width = static_cast<int>(cinfo.image_width);
  out.source_height = static_cast<int>(cinfo.image_height);
  out.scale = static_cast<int>(cinfo.scale_num * 8 / cinfo.scale_denom);
  const JDIMENSION width = cinfo.output_width;
  out.image.resize(static_cast<int>(width), static_cast<int>(cinfo.output_height));
  if (cmyk || grey) row.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(cinfo.output_components));
  while (cinfo.output_scanline < cinfo.output_height) {
    std::uint8_t* dst = out.image.row(static_cast<int>(cinfo.output_scanline));
    JSAMPROW target = (cmyk || grey) ? row.data() : dst;
    if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) return Status::kBadImage;
    if (cmyk) {
      cmyk_row_to_rgb(row.data(), dst, width);
    } else if (grey) {
      for (JDIMENSION x = 0; x < width; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
    }
  }
  jpeg_finish_decompress(&cinfo);
  return Status::kOk;
}

}  // namespace

Status decode_jpeg(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out) {
  Decompressor d;
  d.cinfo.err = jpeg_std_error(&d.error.mgr);
  d.error.mgr.error_exit = on_error;
  d.error.mgr.output_message = ignore_message;
  d.source.init_source = init_source;
  d.source.fill_input_buffer = fill_input_buffer;
  d.source.skip_input_data = skip_input_data;
  d.source.resync_to_restart = jpeg_resync_to_restart;
  d.source.term_source = term_source;
  d.source.next_input_byte = data;
  d.source.bytes_in_buffer = size;
  std::vector<JSAMPLE> row;
  return decode_inner(d, options, out, row);
}

}  // namespace ignite::image
