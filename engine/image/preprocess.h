// Owns the per-image pipeline, CLIPImageProcessor's (the PIL one) steps in native code: decode,
// EXIF orientation, shortest-side bicubic resize, centre crop with zero padding, rescale,
// normalise, channels-first float32.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "image/image.h"

namespace ignite::image {

// What preprocessor_config.json asks for (ignite.images.preprocess.ImageSpec).
struct Spec {
  int shortest_edge = 224;
  int crop_height = 224;
  int crop_width = 224;
  double rescale_factor = 1.0 / 255;
  std::array<double, 3> mean{0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> std{0.26862954, 0.26130258, 0.27577711};
  bool do_resize = true;
  bool do_center_crop = true;
  bool do_rescale = true;
  bool do_normalize = true;
};

// kExact decodes every image at full size, as Pillow does; kFast lets a JPEG decode at a
// reduced DCT scale whose short side still covers the resize target.
enum class Mode { kExact, kFast };

class Preprocessor {
 public:
  // Throws InvalidArgument for a spec it cannot honour (no centre crop: the shape would vary).
  Preprocessor(const Spec& spec, Mode mode, std::uint64_t max_pixels);

  // Writes 3 x crop_height x crop_width floats to `out`: the pixels on kOk, zeros otherwise.
  // Thread-safe (const, no shared scratch).
  Status process(const std::uint8_t* data, std::size_t size, float* out) const;

  // The shortest-side target size, as PillowPreprocessor.pixels computes it.
  void resize_target(int width, int height, int& out_width, int& out_height) const;

  const Spec& spec() const { return spec_; }
  std::size_t values_per_image() const { return 3 * static_cast<std::size_t>(spec_.crop_height) * spec_.crop_width; }

 private:
  void write(const Rgb& image, float* out) const;

  Spec spec_;
  DecodeOptions decode_;
  // Each byte value's final float per channel, computed in float32 as NumPy computes it, so
  // the output is bit-identical to the reference.
  std::array<std::array<float, 256>, 3> lut_{};
};

}  // namespace ignite::image
