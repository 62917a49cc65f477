"""The native image preprocessor (ignite._engine.ImagePreprocessor) against its references:
transformers' CLIPImageProcessorPil and PillowPreprocessor on the shared photos, generated images
of many sizes and shapes, and generated odd cases (CMYK, grey, 16-bit, palette with transparency,
progressive and EXIF-rotated JPEGs, animated GIF and WebP, BMP, damaged and hostile files), each
matching Pillow or getting its status. Fast mode's fidelity is measured and printed."""
from __future__ import annotations

import functools
import io
import logging
import os
import random
import struct
import tarfile
import threading
import time
import zlib

import numpy as np
import PIL
import pytest
from PIL import Image

from ignite.images import preprocess
from ignite.images.preprocess import ImageSpec, NativePreprocessor, PillowPreprocessor, make_preprocessor
from ignite.rows.status import BAD_IMAGE, IMAGE_TOO_LARGE, OK, UNSUPPORTED_IMAGE

from conftest import SHARED_DATA

# Skipped with the reason where the decoders were not built, except in CI (.ci/run installs their
# libraries), where a silent fallback to Pillow would leave the native path untested: there every
# test fails instead, test_native_decoders_built first with the reason.
if not preprocess.native_available() and not os.environ.get("CI"):
    pytestmark = pytest.mark.skip(reason="ignite._engine was built without the image decoders (apt-get install "
                                         "libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev)")

# The native resize follows Pillow 13's pass order (vertical first when the height shrinks by more
# than twice the width's pixels); Pillow 12 and older always ran the horizontal pass first.
REFERENCE_PILLOW = int(PIL.__version__.split(".")[0]) >= 13
needs_reference_pillow = pytest.mark.skipif(
    not REFERENCE_PILLOW, reason=f"Pillow {PIL.__version__} resizes in another pass order than Pillow 13, the reference")

SPEC = ImageSpec()
# The resize is byte-identical, so the floats differ by nothing; the bound only allows for a
# NumPy that rounds a float32 operation differently.
TOLERANCE = 1e-5


def run(pre: object, items: list[bytes], spec: ImageSpec = SPEC) -> tuple[np.ndarray, list[int]]:
    out = np.full((len(items), *spec.shape), np.nan, np.float32)
    statuses = pre.process(items, out)  # type: ignore[attr-defined]
    return out, statuses.tolist()


def compare(items: list[bytes], spec: ImageSpec = SPEC, threads: int = 1) -> float:
    """Native against PillowPreprocessor: same statuses, the largest difference returned."""
    if not REFERENCE_PILLOW:
        pytest.skip(f"Pillow {PIL.__version__} resizes in another pass order than Pillow 13, the reference")
    ref, ref_status = run(PillowPreprocessor(spec), items, spec)
    got, got_status = run(NativePreprocessor(spec, threads=threads), items, spec)
    assert got_status == ref_status
    return float(np.abs(got - ref).max()) if items else 0.0


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    """Smooth gradients plus noise: detail at every scale, so a wrong tap or rounding shows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], -1)
    a = np.clip(base + rng.integers(-60, 60, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(a, "RGB").convert(mode)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(w: int, h: int, depth: int, color: int, rows: bytes, extra: bytes = b"") -> bytes:
    """A PNG written by hand, for modes Pillow cannot write (16-bit colour, grey with alpha)."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)) + extra
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def shared_images() -> list[bytes]:
    root = SHARED_DATA / "images"
    if not root.is_dir():
        pytest.skip(f"{root} not found: the shared photos live beside the repo in ../shared/data/images "
                    f"(set IGNITE_SHARED_DATA to another folder)")
    items = [p.read_bytes() for p in sorted((root / "folder").iterdir()) if p.is_file()]
    for shard in sorted(root.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.rsplit(".", 1)[-1] in ("jpg", "jpeg", "png", "webp"):
                    items.append(tar.extractfile(m).read())  # type: ignore[union-attr]
    return items


def test_native_decoders_built() -> None:
    assert preprocess.native_available(), "ignite._engine was built without the image decoders"


# -- the shared photos --------------------------------------------------------------------------

def test_shared_photos_equal_pillow_reference() -> None:
    items = shared_images()
    diff = compare(items, threads=2)
    print(f"\nnative vs PillowPreprocessor on {len(items)} shared photos: max |diff| {diff:.3g}")
    assert diff < TOLERANCE


@needs_reference_pillow
def test_shared_photos_equal_clip_image_processor() -> None:
    clip = pytest.importorskip("transformers.models.clip.image_processing_pil_clip")
    items = shared_images()[:300]
    ref = clip.CLIPImageProcessorPil()(
        images=[Image.open(io.BytesIO(b)).convert("RGB") for b in items], return_tensors="np")["pixel_values"]
    got, statuses = run(NativePreprocessor(SPEC, threads=2), items)
    assert statuses == [OK] * len(items)
    diff = float(np.abs(got - ref).max())
    print(f"\nnative vs CLIPImageProcessorPil on {len(items)} shared photos: max |diff| {diff:.3g}")
    assert diff < TOLERANCE


def test_fast_mode_fidelity_on_shared_photos() -> None:
    items = shared_images()
    exact, _ = run(NativePreprocessor(SPEC, threads=2), items)
    fast, statuses = run(NativePreprocessor(SPEC, threads=2, mode="fast"), items)
    assert statuses == [OK] * len(items)
    # In 8-bit steps of the resized image: |diff| * std * 255 (rescale 1/255).
    steps = np.abs(fast - exact) * np.asarray(SPEC.std, np.float32)[None, :, None, None] * 255
    per_image = steps.reshape(len(items), -1).mean(1)
    print(f"\nfast vs exact on {len(items)} shared photos (8-bit steps): mean {steps.mean():.3f}, "
          f"worst image mean {per_image.max():.3f}, max {steps.max():.1f}; "
          f"identical images {(per_image == 0).sum()} (decoded at full scale)")
    assert steps.mean() < 2.0


# -- generated images ---------------------------------------------------------------------------

SIZES = [(1, 1), (1, 300), (300, 1), (2, 3), (7, 500), (100, 100), (223, 224), (224, 224), (225, 224),
         (224, 225), (150, 400), (400, 150), (640, 480), (480, 640), (999, 1001), (1920, 1080), (333, 2000),
         (3000, 224), (224, 3000), (97, 4096)]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_generated_sizes_equal_pillow(fmt: str) -> None:
    items = [encode(noise(w, h, i), fmt) for i, (w, h) in enumerate(SIZES)]
    rng = random.Random(16)
    for i in range(20):
        w, h = rng.randint(1, 1500), rng.randint(1, 1500)
        items.append(encode(noise(w, h, 100 + i), fmt))
    diff = compare(items, threads=2)
    print(f"\n{fmt}: {len(items)} generated sizes, max |diff| {diff:.3g}")
    assert diff < TOLERANCE


@pytest.mark.parametrize("spec", [
    ImageSpec(shortest_edge=200, crop_height=224, crop_width=224),  # crop larger than the image: zero padding
    ImageSpec(shortest_edge=256, crop_height=224, crop_width=160),  # a crop that is not square
    ImageSpec(shortest_edge=336, crop_height=336, crop_width=336),
    ImageSpec(do_resize=False, crop_height=64, crop_width=300),
    ImageSpec(do_normalize=False), ImageSpec(do_rescale=False), ImageSpec(do_rescale=False, do_normalize=False),
    ImageSpec(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), rescale_factor=1 / 127.5),
], ids=lambda s: f"{s.shortest_edge}-{s.crop_height}x{s.crop_width}-r{int(s.do_resize)}{int(s.do_rescale)}"
                 f"{int(s.do_normalize)}-m{s.mean[0]}")
def test_specs_equal_pillow(spec: ImageSpec) -> None:
    items = [encode(noise(w, h, i), "PNG") for i, (w, h) in enumerate(SIZES[:14])]
    assert compare(items, spec) < TOLERANCE


def test_needs_center_crop_and_valid_arguments() -> None:
    with pytest.raises(ValueError, match="do_center_crop"):
        NativePreprocessor(ImageSpec(do_center_crop=False))
    with pytest.raises(ValueError, match="mode"):
        NativePreprocessor(SPEC, mode="quick")
    pre = NativePreprocessor(SPEC)
    item = [encode(noise(50, 50, 1), "PNG")]
    for bad in (np.zeros((1, 3, 224, 224), np.float64), np.zeros((2, 3, 224, 224), np.float32),
                np.zeros((1, 3, 224, 223), np.float32), np.zeros((1, 224, 224, 3), np.float32).transpose(0, 3, 1, 2)):
        with pytest.raises(ValueError, match="out must be"):
            pre.process(item, bad)
    ro = np.zeros((1, 3, 224, 224), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be"):
        pre.process(item, ro)
    with pytest.raises(ValueError, match="contiguous bytes"):
        pre.process([np.zeros((2, 2), np.uint8)], np.zeros((1, 3, 224, 224), np.float32))
    # Any contiguous buffer is an item: bytearray, memoryview, a uint8 array.
    out = np.zeros((3, 3, 224, 224), np.float32)
    data = item[0]
    assert pre.process([bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)], out).tolist() == [OK] * 3
    assert pre.process([], np.zeros((0, 3, 224, 224), np.float32)).tolist() == []


# -- odd cases ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def odd_cases() -> dict[str, bytes]:
    rgb = noise(320, 240, 7)
    cases = {
        "cmyk_jpeg": encode(rgb.convert("CMYK"), "JPEG", quality=90),
        "grey_jpeg": encode(rgb.convert("L"), "JPEG"),
        "progressive_jpeg": encode(rgb, "JPEG", progressive=True, quality=85),
        "subsampling_444_jpeg": encode(rgb, "JPEG", subsampling=0),
        "subsampling_422_jpeg": encode(rgb, "JPEG", subsampling=1),
        "restart_jpeg": encode(rgb, "JPEG", restart_marker_blocks=2) if _has_restart() else encode(rgb, "JPEG"),
        "grey_png": encode(rgb.convert("L"), "PNG"),
        "bilevel_png": encode(rgb.convert("1"), "PNG"),
        "grey16_png": encode(Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 3)), "PNG"),
        "grey_alpha_png": encode(rgb.convert("LA"), "PNG"),
        "rgba_png": encode(rgb.convert("RGBA"), "PNG"),
        "palette_png": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=200), "PNG"),
        "palette_transparency_png": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG",
                                           transparency=3),
        "palette_4bit_png": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG", bits=4),
        "rgb_transparency_png": encode(rgb, "PNG", transparency=(10, 20, 30)),
        "webp_lossy": encode(rgb, "WEBP", quality=80),
        "webp_lossless": encode(rgb, "WEBP", lossless=True),
        "webp_alpha": encode(rgb.convert("RGBA"), "WEBP", quality=80),
        "webp_animated": encode(rgb, "WEBP", save_all=True, append_images=[noise(320, 240, 8)], duration=100),
        "gif": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
        "gif_animated": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", save_all=True,
                               append_images=[noise(320, 240, 9).convert("P", palette=Image.Palette.ADAPTIVE)]),
        "gif_transparency": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", transparency=5),
        "gif_interlaced": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", interlace=True),
        "bmp_24": encode(rgb, "BMP"),
        "bmp_8": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "BMP"),
        "bmp_1": encode(rgb.convert("1"), "BMP"),
        "bmp_grey": encode(rgb.convert("L"), "BMP"),
        "bmp_32": encode(rgb.convert("RGBA"), "BMP"),
    }
    # 16-bit colour and grey+alpha, which Pillow reads but cannot write.
    rng = np.random.default_rng(3)
    w, h = 60, 40
    for name, color, channels in (("rgb16_png", 2, 3), ("rgba16_png", 6, 4), ("grey_alpha16_png", 4, 2)):
        a = rng.integers(0, 65536, (h, w * channels), dtype=np.uint16).astype(">u2")
        cases[name] = raw_png(w, h, 16, color, b"".join(b"\0" + row.tobytes() for row in a))
    return cases


def _has_restart() -> bool:
    try:
        encode(Image.new("RGB", (8, 8)), "JPEG", restart_marker_blocks=1)
    except (TypeError, ValueError, OSError):
        return False
    return True


@needs_reference_pillow
@pytest.mark.parametrize("name", sorted(odd_cases()))
def test_odd_case_equals_pillow(name: str) -> None:
    item = odd_cases()[name]
    ref, ref_status = run(PillowPreprocessor(SPEC), [item])
    got, got_status = run(NativePreprocessor(SPEC), [item])
    assert ref_status == [OK] and got_status == [OK]
    diff = float(np.abs(got - ref).max())
    assert diff < TOLERANCE, f"{name}: max |diff| {diff}"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_exif_transpose(fmt: str, orientation: int) -> None:
    image = noise(300, 180, orientation)  # not square: a wrong transpose changes the shape
    exif = Image.Exif()
    exif[0x0112] = orientation
    item = encode(image, fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {}))
    assert compare([item]) < TOLERANCE


def bomb_png(w: int, h: int) -> bytes:
    return raw_png(w, h, 8, 2, b"")[:33] + png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))


def bomb_jpeg(w: int, h: int) -> bytes:
    small = bytearray(encode(Image.new("RGB", (16, 16)), "JPEG"))
    sof = small.index(b"\xff\xc0")
    small[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(small)


def test_statuses_of_damaged_and_hostile_files() -> None:
    jpeg = encode(noise(400, 300, 1), "JPEG")
    png = encode(noise(400, 300, 2), "PNG")
    tiff = encode(noise(40, 30, 3), "TIFF")
    cases = {
        "zero_bytes": (b"", BAD_IMAGE),
        "text_named_jpg": (b"this is not an image, whatever its name says\n" * 20, BAD_IMAGE),
        "truncated_jpeg": (jpeg[: len(jpeg) // 2], BAD_IMAGE),
        "jpeg_header_only": (jpeg[:200], BAD_IMAGE),
        "truncated_png": (png[: len(png) // 2], BAD_IMAGE),
        "png_signature_only": (png[:8], BAD_IMAGE),
        "truncated_webp": (encode(noise(400, 300, 4), "WEBP")[:300], BAD_IMAGE),
        "truncated_gif": (encode(noise(400, 300, 5).convert("P"), "GIF")[:400], BAD_IMAGE),
        "truncated_bmp": (encode(noise(400, 300, 6), "BMP")[:5000], BAD_IMAGE),
        "png_bomb": (bomb_png(100_000, 100_000), IMAGE_TOO_LARGE),
        "jpeg_bomb": (bomb_jpeg(65_000, 65_000), IMAGE_TOO_LARGE),
        "tiff": (tiff, UNSUPPORTED_IMAGE),
    }
    pre = NativePreprocessor(SPEC, threads=2)
    items = [c[0] for c in cases.values()]
    start = time.perf_counter()
    out, statuses = run(pre, items)
    elapsed = time.perf_counter() - start
    assert dict(zip(cases, statuses)) == {k: v[1] for k, v in cases.items()}
    assert not out.any(), "a refused image leaves zeros"
    assert elapsed < 2, f"refusing took {elapsed:.1f} s: the bombs were decoded, not refused from the header"


def test_max_pixels_is_read_from_the_header() -> None:
    items = [encode(noise(300, 200, i), fmt) for i, fmt in enumerate(["JPEG", "PNG", "WEBP", "GIF", "BMP"])]
    small = NativePreprocessor(SPEC, max_pixels=300 * 200 - 1)
    assert run(small, items)[1] == [IMAGE_TOO_LARGE] * len(items)
    assert run(NativePreprocessor(SPEC, max_pixels=300 * 200), items)[1] == [OK] * len(items)


def test_random_garbage_and_mutations_never_crash() -> None:
    rng = random.Random(7)
    seeds = list(odd_cases().values())
    items = []
    for i in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if i % 3 == 0:
            data = data[: rng.randrange(len(data))]
        items.append(bytes(data))
    items += [bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))) for _ in range(50)]
    out, statuses = run(NativePreprocessor(SPEC, threads=2), items)
    assert set(statuses) <= {OK, BAD_IMAGE, UNSUPPORTED_IMAGE, IMAGE_TOO_LARGE}
    assert np.isfinite(out).all()


# -- threads ------------------------------------------------------------------------------------

def test_threads_agree_and_calls_may_overlap() -> None:
    items = [encode(noise(200 + 37 * i, 150 + 23 * i, i), "JPEG" if i % 2 else "PNG") for i in range(24)]
    one, _ = run(NativePreprocessor(SPEC, threads=1), items)
    pre = NativePreprocessor(SPEC, threads=3)
    assert pre.threads == 3
    results: list[np.ndarray] = []

    def worker() -> None:
        for _ in range(3):
            results.append(run(pre, items)[0])

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 9
    for r in results:
        assert np.array_equal(r, one)


# -- the factory --------------------------------------------------------------------------------

def test_make_preprocessor_native_and_fallbacks(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    assert make_preprocessor(SPEC, threads=2).name == "native"
    assert make_preprocessor(SPEC, mode="pillow").name == "pillow"
    with caplog.at_level(logging.INFO, logger="ignite"):
        assert make_preprocessor(ImageSpec(do_center_crop=False)).name == "pillow"
    assert "do_center_crop" in caplog.text
    monkeypatch.setattr(preprocess, "native_available", lambda: False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ignite"):
        assert make_preprocessor(SPEC, mode="fast").name == "pillow"
    assert "without the image decoders" in caplog.text and "decoding exactly with Pillow" in caplog.text
    from ignite.errors import UsageError
    with pytest.raises(UsageError, match="--image-decode"):
        make_preprocessor(SPEC, mode="quick")
