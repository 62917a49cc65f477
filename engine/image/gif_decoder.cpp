// GIF's first frame through giflib, as Pillow shows frame 0: a canvas the size of the logical
// screen (grown to hold the frame), filled with the transparent index (else index 0), the frame
// pasted at its offset, then every index looked up in the frame's palette (local, else global;
// grey levels when there is none).
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "image/decoders.h"

namespace ignite::image {
namespace {

int read_bytes(GifFileType* gif, GifByteType* out, int count) {
  auto* src = static_cast<ByteSource*>(gif->UserData);
  return static_cast<int>(src->take(out, static_cast<std::size_t>(count < 0 ? 0 : count)));
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    DGifCloseFile(gif, &error);
  }
};

}  // namespace

Status decode_gif(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, Decoded& out) {
  ByteSource src{data, size};
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&src, read_bytes, &error));
  if (!gif) return Status::kBadImage;
  int transparent = -1;
  for (;;) {
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) != GIF_OK) return Status::kBadImage;
    if (type == TERMINATE_RECORD_TYPE) return Status::kBadImage;  // no frame at all
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif.get(), &code, &block) != GIF_OK) return Status::kBadImage;
      if (code == GRAPHICS_EXT_FUNC_CODE && block && block[0] >= 4) {
        GraphicsControlBlock gcb;
        if (DGifExtensionToGCB(block[0], block + 1, &gcb) == GIF_OK) transparent = gcb.TransparentColor;
      }
      while (block) {
        if (DGifGetExtensionNext(gif.get(), &block) != GIF_OK) return Status::kBadImage;
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) != GIF_OK) return Status::kBadImage;
    break;
  }
  const GifImageDesc& frame = gif->Image;
  if (frame.Left < 0 || frame.Top < 0 || frame.Width <= 0 || frame.Height <= 0) return Status::kBadImage;
  const std::uint64_t width = std::max<std::uint64_t>(gif->SWidth, std::uint64_t(frame.Left) + frame.Width);
  const std::uint64_t height = std::max<std::uint64_t>(gif->SHeight, std::uint64_t(frame.Top) + frame.Height);
  if (!pixels_within(width, height, options.max_pixels)) return Status::kTooLarge;

  std::vector<GifPixelType> indices(width * height, static_cast<GifPixelType>(transparent >= 0 ? transparent : 0));
  std::vector<int> order(static_cast<std::size_t>(frame.Height));
  if (frame.Interlace) {  // rows arrive in four passes
    std::size_t i = 0;
    for (const auto& [start, step] : {std::pair{0, 8}, std::pair{4, 8}, std::pair{2, 4}, std::pair{1, 2}}) {
      for (int y = start; y < frame.Height; y += step) order[i++] = y;
    }
  } else {
    for (int y = 0; y < frame.Height; ++y) order[static_cast<std::size_t>(y)] = y;
  }
  for (int row : order) {
    GifPixelType* line = indices.data() + (static_cast<std::size_t>(frame.Top) + row) * width + frame.Left;
    if (DGifGetLine(gif.get(), line, frame.Width) != GIF_OK) return Status::kBadImage;
  }

  const ColorMapObject* map = frame.ColorMap ? frame.ColorMap : gif->SColorMap;
  out.image.resize(static_cast<int>(width), static_cast<int>(height));
  std::uint8_t* dst = out.image.pixels.data();
  for (GifPixelType index : indices) {
    if (!map) {
      dst[0] = dst[1] = dst[2] = index;
    } else if (index < map->ColorCount) {
      const GifColorType& c = map->Colors[index];
      dst[0] = c.Red;
      dst[1] = c.Green;
      dst[2] = c.Blue;
    } else {
      dst[0] = dst[1] = dst[2] = 0;
    }
    dst += 3;
  }
  return Status::kOk;
}

}  // namespace ignite::image
