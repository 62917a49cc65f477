"""The image options of `ignite embed`."""
from __future__ import annotations

import argparse
from typing import Callable

from ignite.images.preprocess import DECODE_MODES, DEFAULT_MAX_PIXELS


def add_embed_options(parser: argparse.ArgumentParser, size: Callable[[str], int]) -> None:
    g = parser.add_argument_group(
        "images (CLIP)", "image files (.jpg .jpeg .png .webp .gif .bmp), folders and globs of them, and WebDataset "
                         ".tar shards are embedded with the vision tower of a CLIP --model; text inputs with a CLIP "
                         "model go through its text tower")
    g.add_argument("--image-field", default=None, metavar="FIELD",
                   help="Parquet/JSONL column holding each image: a path (relative to that file's folder), the bytes "
                        "(binary), or a {bytes, path} struct; makes the run an image run")
    g.add_argument("--max-image-pixels", type=size, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"larger images get status image_too_large (default {DEFAULT_MAX_PIXELS:,}, Pillow's "
                        f"decompression-bomb limit)")
    g.add_argument("--image-decode", choices=DECODE_MODES, default="exact",
                   help="exact: as transformers' CLIPImageProcessor (PIL), natively; fast: large JPEGs decoded at a "
                        "reduced scale first (native decoder only); pillow: Pillow itself, one image at a time")
