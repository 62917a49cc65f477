// Reads the orientation tag (0x0112) from an EXIF block, as Pillow's getexif() finds it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ignite::image {

// `data` is the TIFF structure, optionally preceded by "Exif\0\0" (JPEG APP1 and WebP EXIF
// chunks carry it, PNG eXIf does not). Returns 1..8, or 1 when absent, invalid or truncated.
int exif_orientation(const std::uint8_t* data, std::size_t size);

}  // namespace ignite::image
