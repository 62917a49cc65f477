#include "image/preprocess.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/error.h"
#include "image/decoders.h"
#include "image/orient.h"
#include "image/resize.h"

namespace ignite::image {

Preprocessor::Preprocessor(const Spec& spec, Mode mode, std::uint64_t max_pixels) : spec_(spec) {
  if (!spec.do_center_crop) {
    throw InvalidArgument("image preprocessing needs do_center_crop: without it every image has its own shape");
  }
  if (spec.crop_height <= 0 || spec.crop_width <= 0 || (spec.do_resize && spec.shortest_edge <= 0)) {
    throw InvalidArgument("image sizes must be positive (shortest_edge " + std::to_string(spec.shortest_edge) +
                          ", crop " + std::to_string(spec.crop_height) + "x" + std::to_string(spec.crop_width) + ")");
  }
  if (max_pixels == 0) throw InvalidArgument("max_pixels must be positive");
  decode_.max_pixels = max_pixels;
  decode_.min_short_side = mode == Mode::kFast && spec.do_resize ? spec.shortest_edge : 0;
  const float rescale = static_cast<float>(spec.rescale_factor);
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(spec.mean[c]), std = static_cast<float>(spec.std[c]);
    for (int v = 0; v < 256; ++v) {
      float x = static_cast<float>(v);
      if (spec.do_rescale) x *= rescale;
      if (spec.do_normalize) x = (x - mean) / std;
      lut_[c][v] = x;
    }
  }
}

void Preprocessor::resize_target(int width, int height, int& out_width, int& out_height) const {
  const int edge = spec_.shortest_edge;
  const bool portrait = width <= height;
  const std::int64_t short_side = portrait ? width : height, long_side = portrait ? height : width;
  // Python's int(edge * long / short): an exact product, one correctly rounded division.
  const int new_long = static_cast<int>(static_cast<double>(edge * long_side) / static_cast<double>(short_side));
  out_width = portrait ? edge : new_long;
  out_height = portrait ? new_long : edge;
}

Status Preprocessor::process(const std::uint8_t* data, std::size_t size, float* out) const {
  Decoded decoded;
  const Status status = decode(data, size, decode_, decoded);
  if (status != Status::kOk) {
    std::fill(out, out + values_per_image(), 0.0f);
    return status;
  }
  Rgb image = apply_orientation(std::move(decoded.image), decoded.orientation);
  if (spec_.do_resize) {
    const bool reduced = decoded.scale != 8;
    // A reduced decode is resized to the full-size image's target, from the part of it that is
    // image (scale / 8 of the full size; its last row and column are partly padding).
    const bool turned = decoded.orientation >= 5;
    const int full_w = reduced ? (turned ? decoded.source_height : decoded.source_width) : image.width;
    const int full_h = reduced ? (turned ? decoded.source_width : decoded.source_height) : image.height;
    int w = 0, h = 0;
    resize_target(full_w, full_h, w, h);
    if (w <= 0 || h <= 0) {  // a sliver whose long side rounds to nothing: Pillow refuses it too
      std::fill(out, out + values_per_image(), 0.0f);
      return Status::kBadImage;
    }
    if (reduced) {
      image = resize_bicubic(image, w, h, static_cast<float>(full_w) * decoded.scale / 8,
                             static_cast<float>(full_h) * decoded.scale / 8);
    } else if (w != image.width || h != image.height) {
      image = resize_bicubic(image, w, h);
    }
  }
  write(image, out);
  return Status::kOk;
}

void Preprocessor::write(const Rgb& image, float* out) const {
  // transformers' center_crop: pad to at least the crop with zeros, centred, then crop the
  // centre; both offsets folded into one per axis.
  const int ch = spec_.crop_height, cw = spec_.crop_width;
  const int padded_h = std::max(image.height, ch), padded_w = std::max(image.width, cw);
  const int oy = (padded_h - ch) / 2 - (padded_h - image.height) / 2;
  const int ox = (padded_w - cw) / 2 - (padded_w - image.width) / 2;
  const std::size_t plane = static_cast<std::size_t>(ch) * cw;
  for (int y = 0; y < ch; ++y) {
    const int sy = y + oy;
    float* r = out + static_cast<std::size_t>(y) * cw;
    float* g = r + plane;
    float* b = g + plane;
    if (sy < 0 || sy >= image.height) {
      std::fill(r, r + cw, lut_[0][0]);
      std::fill(g, g + cw, lut_[1][0]);
      std::fill(b, b + cw, lut_[2][0]);
      continue;
    }
    const std::uint8_t* src = image.row(sy);
    for (int x = 0; x < cw; ++x) {
      const int sx = x + ox;
      if (sx < 0 || sx >= image.width) {
        r[x] = lut_[0][0];
        g[x] = lut_[1][0];
        b[x] = lut_[2][0];
      } else {
        r[x] = lut_[0][src[3 * sx]];
        g[x] = lut_[1][src[3 * sx + 1]];
        b[x] = lut_[2][src[3 * sx + 2]];
      }
    }
  }
}

}  // namespace ignite::image
