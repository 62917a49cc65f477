"""Encoded image bytes to the pixel tensor a CLIP vision tower takes, as transformers'
CLIPImageProcessor (the PIL one) makes it: convert to RGB, shortest-side bicubic resize, centre
crop, rescale, normalise, channels first. EXIF orientation is applied first (the processor
itself ignores it; a photo should be embedded the way it is shown).

This module is the contract the image pipeline codes against. `PillowPreprocessor` is the
reference and the fallback where the native decoders were not built; the native one in
ignite._engine does the same on a pool of threads with the GIL released."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ignite.errors import ModelError, UsageError
from ignite.rows.status import BAD_IMAGE, IMAGE_TOO_LARGE, OK, UNSUPPORTED_IMAGE

log = logging.getLogger("ignite")

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS, its decompression-bomb limit
# exact: CLIPImageProcessor's pixels; fast: large JPEGs decoded at a reduced DCT scale first;
# pillow: the Pillow reference whatever was built (exact, one thread).
DECODE_MODES = ("exact", "fast", "pillow")
# ImagePreprocessor's status codes 0..3 as record status codes (rows/status.py).
_CODES = np.array([OK, BAD_IMAGE, UNSUPPORTED_IMAGE, IMAGE_TOO_LARGE], np.uint8)


@dataclass(frozen=True)
class ImageSpec:
    """What preprocessor_config.json asks for."""

    shortest_edge: int = 224
    crop_height: int = 224
    crop_width: int = 224
    rescale_factor: float = 1 / 255
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    do_resize: bool = True
    do_center_crop: bool = True
    do_rescale: bool = True
    do_normalize: bool = True

    @classmethod
    def from_model_dir(cls, path: Path) -> ImageSpec:
        file = path / "preprocessor_config.json"
        try:
            cfg = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {file}: {exc}") from None
        size, crop = cfg.get("size", 224), cfg.get("crop_size", 224)
        edge = size.get("shortest_edge") if isinstance(size, dict) else size
        if not isinstance(edge, int):
            raise ModelError(f"{file}: size {size!r} has no shortest_edge; only CLIP's shortest-side resize is supported")
        ch, cw = (crop.get("height"), crop.get("width")) if isinstance(crop, dict) else (crop, crop)
        d = cls()
        return cls(shortest_edge=edge, crop_height=int(ch), crop_width=int(cw),
                   rescale_factor=float(cfg.get("rescale_factor", d.rescale_factor)),
                   mean=tuple(float(x) for x in cfg.get("image_mean", d.mean)),  # type: ignore[arg-type]
                   std=tuple(float(x) for x in cfg.get("image_std", d.std)),  # type: ignore[arg-type]
                   do_resize=bool(cfg.get("do_resize", True)), do_center_crop=bool(cfg.get("do_center_crop", True)),
                   do_rescale=bool(cfg.get("do_rescale", True)), do_normalize=bool(cfg.get("do_normalize", True)))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.crop_height, self.crop_width)


class PillowPreprocessor:
    """The reference: Pillow, one image at a time on the calling thread."""

    name = "pillow"

    def __init__(self, spec: ImageSpec, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.spec, self.max_pixels = spec, max_pixels

    def process(self, items: Sequence[bytes], out: np.ndarray) -> np.ndarray:
        """Fill out[i] (float32, (n, 3, H, W)) from items[i]; the uint8 status codes, OK or why not
        (zeros then)."""
        return np.asarray([self._one(item, out[i]) for i, item in enumerate(items)], np.uint8)

    def _one(self, data: bytes, out: np.ndarray) -> int:
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > self.max_pixels:
                    out[:] = 0
                    return IMAGE_TOO_LARGE
                image = ImageOps.exif_transpose(image).convert("RGB")
                out[:] = self.pixels(image)
                return OK
        except UnidentifiedImageError:
            out[:] = 0
            return BAD_IMAGE
        except Image.DecompressionBombError:  # Pillow refuses to open past twice its own limit
            out[:] = 0
            return IMAGE_TOO_LARGE
        except (OSError, ValueError, SyntaxError):
            out[:] = 0
            return BAD_IMAGE

    def pixels(self, image: object) -> np.ndarray:
        """An RGB PIL image as CLIPImageProcessor's (3, H, W) float32."""
        from PIL import Image

        s = self.spec
        assert isinstance(image, Image.Image)
        if s.do_resize:
            w, h = image.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(s.shortest_edge * long / short)
            size = (s.shortest_edge, new_long) if w <= h else (new_long, s.shortest_edge)
            if size != image.size:
                image = image.resize(size, Image.Resampling.BICUBIC)
        a = np.asarray(image, dtype=np.uint8)
        if s.do_center_crop:
            a = _center_crop(a, s.crop_height, s.crop_width)
        x = a.astype(np.float32)
        if s.do_rescale:
            x *= np.float32(s.rescale_factor)
        if s.do_normalize:
            x = (x - np.asarray(s.mean, np.float32)) / np.asarray(s.std, np.float32)
        return x.transpose(2, 0, 1)


def native_available() -> bool:
    """Whether the native module was built with the image decoders (libjpeg, libpng, libwebp, giflib)."""
    try:
        from ignite import _engine
    except ImportError:
        return False
    return hasattr(_engine, "ImagePreprocessor")


class NativePreprocessor:
    """ignite._engine.ImagePreprocessor: PillowPreprocessor's pixels (the resize byte for byte),
    decoded and preprocessed on a persistent pool of native threads with the GIL released.
    mode "fast" lets a JPEG decode at a reduced DCT scale that still covers the resize target."""

    name = "native"

    def __init__(self, spec: ImageSpec, threads: int = 0, mode: str = "exact",
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        from ignite import _engine

        self.spec, self.mode, self.max_pixels = spec, mode, max_pixels
        self._pool = _engine.ImagePreprocessor(
            spec.shortest_edge, spec.crop_height, spec.crop_width, spec.rescale_factor, spec.mean, spec.std,
            do_resize=spec.do_resize, do_center_crop=spec.do_center_crop, do_rescale=spec.do_rescale,
            do_normalize=spec.do_normalize, threads=threads, mode=mode, max_pixels=max_pixels)

    @property
    def threads(self) -> int:
        return int(self._pool.threads)

    def process(self, items: Sequence[bytes], out: np.ndarray) -> np.ndarray:
        """Fill out[i] (float32, C-contiguous (n, 3, H, W)) from items[i]; the uint8 status codes, OK
        or why not (zeros then)."""
        return _CODES[self._pool.process(list(items), out)]


def make_preprocessor(spec: ImageSpec, threads: int = 0, mode: str = "exact",
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> NativePreprocessor | PillowPreprocessor:
    """The native preprocessor where it was built and can honour `spec`, else Pillow (saying why)."""
    if mode not in DECODE_MODES:
        raise UsageError(f"--image-decode must be one of {', '.join(DECODE_MODES)}, not {mode!r}")
    if mode == "pillow":
        return PillowPreprocessor(spec, max_pixels)
    if not native_available():
        reason = ("ignite._engine was built without the image decoders (apt-get install libjpeg62-turbo-dev "
                  "libpng-dev libwebp-dev libgif-dev, then reinstall)")
    elif not spec.do_center_crop:
        reason = "the model's preprocessor_config.json turns do_center_crop off (images would differ in shape)"
    else:
        return NativePreprocessor(spec, threads, mode, max_pixels)
    log.info("images: preprocessing with Pillow on one thread: %s", reason)
    if mode == "fast":
        log.warning("images: --image-decode fast needs the native decoders; decoding exactly with Pillow")
    return PillowPreprocessor(spec, max_pixels)


def _center_crop(a: np.ndarray, ch: int, cw: int) -> np.ndarray:
    """As transformers' center_crop: zero padding where the image is smaller than the crop."""
    h, w = a.shape[:2]
    top, left = (h - ch) // 2, (w - cw) // 2
    if top >= 0 and left >= 0:
        return a[top:top + ch, left:left + cw]
    out = np.zeros((max(h, ch), max(w, cw), a.shape[2]), a.dtype)
    pt, pl = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    out[pt:pt + h, pl:pl + w] = a
    top, left = (out.shape[0] - ch) // 2, (out.shape[1] - cw) // 2
    return out[top:top + ch, left:left + cw]

