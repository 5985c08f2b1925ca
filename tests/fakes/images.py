"""Real image bytes for fakes and tests."""

from __future__ import annotations

import functools
import io
import os

from PIL import Image


@functools.cache
def png(width: int = 64, height: int = 64, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


@functools.cache
def noise_png(width: int, height: int) -> bytes:
    """Random pixels: PNG cannot compress them, so the file is about width*height*3 bytes."""
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()
