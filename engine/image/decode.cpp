#include <cstring>
#include <string_view>

#include "image/decoders.h"

namespace ignite::image {

Status decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out) {
  using namespace std::literals;
  auto starts = [&](std::string_view magic, std::size_t at = 0) {
    return size >= at + magic.size() && std::memcmp(data + at, magic.data(), magic.size()) == 0;
  };
  if (starts("\xFF\xD8\xFF"sv)) return decode_jpeg(data, size, options, out);
  if (starts("\x89PNG\r\n\x1a\n"sv)) return decode_png(data, size, options, out);
  if (starts("RIFF"sv) && starts("WEBP"sv, 8)) return decode_webp(data, size, options, out);
  if (starts("GIF87a"sv) || starts("GIF89a"sv)) return decode_gif(data, size, options, out);
  if (starts("BM"sv)) return decode_bmp(data, size, options, out);
  // Formats Pillow opens that Ignite does not decode: TIFF, ICO, PPM/PGM, JPEG 2000, QOI.
  for (std::string_view magic : {"II*\0"sv, "MM\0*"sv, "\0\0\1\0"sv, "P5"sv, "P6"sv, "\0\0\0\x0cjP  "sv,
                                 "\xFF\x4F\xFF\x51"sv, "qoif"sv}) {
    if (starts(magic)) return Status::kUnsupported;
  }
  return Status::kBadImage;
}

}  // namespace ignite::image
