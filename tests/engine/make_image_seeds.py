"""Writes the image fuzz target's seed corpus into a folder: one tiny image per format and mode the
decoders handle (so mutations start past every signature), made here with Pillow rather than
copied from anywhere. python tests/engine/make_image_seeds.py DIR; without Pillow it writes
nothing and says so (the fuzzer then starts from random bytes)."""
from __future__ import annotations

import io
import sys
from pathlib import Path


def main(folder: Path) -> int:
    try:
        from PIL import Image
    except ImportError:
        print("make_image_seeds: Pillow not installed; no seeds written")
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.new("RGB", (12, 9))
    rgb.putdata([((x * 21) % 256, (y * 28) % 256, (x * y * 7) % 256) for y in range(9) for x in range(12)])
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    exif = Image.Exif()
    exif[0x0112] = 6
    seeds = {
        "baseline.jpg": (rgb, "JPEG", {}),
        "progressive.jpg": (rgb, "JPEG", {"progressive": True}),
        "grey.jpg": (rgb.convert("L"), "JPEG", {}),
        "cmyk.jpg": (rgb.convert("CMYK"), "JPEG", {}),
        "exif6.jpg": (rgb, "JPEG", {"exif": exif.tobytes()}),
        "rgb.png": (rgb, "PNG", {}),
        "palette-trns.png": (palette, "PNG", {"transparency": 2}),
        "grey16.png": (rgb.convert("I;16"), "PNG", {}),
        "grey-alpha.png": (rgb.convert("LA"), "PNG", {}),
        "exif3.png": (rgb, "PNG", {"exif": exif.tobytes()}),
        "lossy.webp": (rgb, "WEBP", {}),
        "lossless-alpha.webp": (rgb.convert("RGBA"), "WEBP", {"lossless": True}),
        "animated.webp": (rgb, "WEBP", {"save_all": True, "append_images": [rgb.rotate(90)]}),
        "animated.gif": (palette, "GIF", {"save_all": True, "append_images": [palette.rotate(90)]}),
        "24.bmp": (rgb, "BMP", {}),
        "8.bmp": (palette, "BMP", {}),
        "1.bmp": (rgb.convert("1"), "BMP", {}),
    }
    for name, (image, fmt, options) in seeds.items():
        buf = io.BytesIO()
        image.save(buf, fmt, **options)
        (folder / name).write_bytes(buf.getvalue())
    print(f"make_image_seeds: {len(seeds)} seeds in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
