// WebP through libwebp: a still image straight to RGB, an animation's first frame through the
// animation decoder (composited as Pillow's WebP plugin gets it). Alpha is dropped, as Pillow's
// convert("RGB") drops it; the EXIF chunk gives the orientation.
#include <webp/decode.h>
#include <webp/demux.h>

#include <memory>

#include "image/decoders.h"
#include "image/exif.h"

namespace ignite::image {
namespace {

struct DemuxDeleter {
  void operator()(WebPDemuxer* d) const { WebPDemuxDelete(d); }
};
struct AnimDeleter {
  void operator()(WebPAnimDecoder* d) const { WebPAnimDecoderDelete(d); }
};

Status first_frame(const WebPData& data, Decoded& out) {
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) return Status::kBadImage;
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;  // the pool already spreads images over the cores
  std::unique_ptr<WebPAnimDecoder, AnimDeleter> decoder(WebPAnimDecoderNew(&data, &options));
  WebPAnimInfo info;
  if (!decoder || !WebPAnimDecoderGetInfo(decoder.get(), &info)) return Status::kBadImage;
  std::uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp) || !rgba) return Status::kBadImage;
  out.image.resize(static_cast<int>(info.canvas_width), static_cast<int>(info.canvas_height));
  const std::size_t n = static_cast<std::size_t>(info.canvas_width) * info.canvas_height;
  std::uint8_t* dst = out.image.pixels.data();
  for (std::size_t i = 0; i < n; ++i, rgba += 4, dst += 3) {
    dst[0] = rgba[0];
    dst[1] = rgba[1];
    dst[2] = rgba[2];
  }
  return Status::kOk;
}

}  // namespace

Status decode_webp(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK) return Status::kBadImage;
  if (features.width <= 0 || features.height <= 0) return Status::kBadImage;
  if (!pixels_within(static_cast<std::uint64_t>(features.width), static_cast<std::uint64_t>(features.height),
                     options.max_pixels)) {
    return Status::kTooLarge;
  }
  const WebPData whole{data, size};
  std::unique_ptr<WebPDemuxer, DemuxDeleter> demux(WebPDemux(&whole));
  if (demux) {
    WebPChunkIterator chunk;
    if (WebPDemuxGetChunk(demux.get(), "EXIF", 1, &chunk)) {
      out.orientation = exif_orientation(chunk.chunk.bytes, chunk.chunk.size);
      WebPDemuxReleaseChunkIterator(&chunk);
    }
  }
  if (features.has_animation) return first_frame(whole, out);
  out.image.resize(features.width, features.height);
  const int stride = features.width * 3;
  if (!WebPDecodeRGBInto(data, size, out.image.pixels.data(), out.image.pixels.size(), stride)) {
    return Status::kBadImage;
  }
  return Status::kOk;
}

}  // namespace ignite::image
