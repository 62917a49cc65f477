// Applies an EXIF orientation to decoded pixels, as PIL.ImageOps.exif_transpose does.
#pragma once

#include "image/image.h"

namespace ignite::image {

// Returns `in` turned upright for `orientation` (1..8); 1 returns it unchanged (moved).
Rgb apply_orientation(Rgb&& in, int orientation);

}  // namespace ignite::image
