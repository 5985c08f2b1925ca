"""The streaming PNG check agrees with Pillow on what decodes, without holding the pixels."""

from __future__ import annotations

import io
import random
import zlib

import pytest
from PIL import Image

from bot.media import InputImageError, check_input
from bot.media_png import PngError, _row_sizes, verify_png
from tests.fakes.hostile import PNG_SIGNATURE, chunk, ihdr

BITS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def handmade(width: int, height: int, depth: int, colour: int, *, interlaced: bool, drop: int = 0) -> bytes:
    """A PNG written scanline by scanline from `_row_sizes` (zero pixels, filter types cycling 0-4)."""
    rows = list(_row_sizes(width, height, depth * BITS[colour], interlaced=interlaced))
    rows = rows[: len(rows) - drop]
    raw = b"".join(bytes([i % 5]) + b"\0" * (size - 1) for i, size in enumerate(rows))
    palette = chunk(b"PLTE", b"\0\0\0" * 2) if colour == 3 else b""
    header = ihdr(width, height, depth, colour, interlace=int(interlaced))
    return PNG_SIGNATURE + header + palette + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("interlaced", [False, True])
@pytest.mark.parametrize(("depth", "colour"), [(8, 6), (8, 2), (1, 0), (4, 3), (16, 4), (16, 2)])
@pytest.mark.parametrize(("width", "height"), [(1, 1), (3, 7), (17, 5), (64, 33)])
def test_row_accounting_matches_pillow(width: int, height: int, depth: int, colour: int, interlaced: bool) -> None:
    good = handmade(width, height, depth, colour, interlaced=interlaced)
    Image.open(io.BytesIO(good)).load()  # Pillow decodes what we wrote ...
    verify_png(good)  # ... and so does the stream check
    if len(list(_row_sizes(width, height, depth * BITS[colour], interlaced=interlaced))) > 1:
        short = handmade(width, height, depth, colour, interlaced=interlaced, drop=1)
        with pytest.raises(PngError):
            verify_png(short)


def test_broken_pngs_are_caught() -> None:
    good = handmade(40, 30, 8, 6, interlaced=False)
    verify_png(good)
    raw = bytearray(zlib.decompress(good[good.index(b"IDAT") + 4 : good.index(b"IEND") - 8]))
    raw[0] = 9  # not a filter type
    bad_filter = PNG_SIGNATURE + ihdr(40, 30) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    extra = PNG_SIGNATURE + ihdr(40, 30) + chunk(b"IDAT", zlib.compress(bytes(raw) + b"\0" * 200))
    cases = {
        "bad filter": bad_filter,
        "too much data": extra + chunk(b"IEND", b""),
        "no IEND": good[:-12],
        "bad CRC": good[:-1] + bytes([good[-1] ^ 1]),
        "truncated": good[: len(good) // 2],
        "palette missing": PNG_SIGNATURE + ihdr(4, 4, 8, 3) + chunk(b"IDAT", zlib.compress(b"\0" * 20)),
        "not a PNG": b"GIF89a",
    }
    for name, data in cases.items():
        with pytest.raises(PngError):
            verify_png(data)
        assert name


def big_png(width: int, height: int, corrupt: bool = False) -> bytes:
    """A valid RGBA PNG past the full-decode limit, with enough noise to not look like a bomb."""
    rng = random.Random(3)
    packer = zlib.compressobj(1)
    parts = []
    for y in range(height):
        row = b"\0" + (rng.randbytes(width * 4) if y % 40 == 0 else b"\0" * (width * 4))
        parts.append(packer.compress(row))
    body = bytearray(b"".join(parts) + packer.flush())
    if corrupt:
        body = body[: len(body) - 5000]
    return PNG_SIGNATURE + ihdr(width, height) + chunk(b"IDAT", bytes(body)) + chunk(b"IEND", b"")


def test_big_pngs_are_checked_as_a_stream() -> None:
    data = big_png(4200, 4200)  # 17.6 MP: 70 MB decoded, over the full-decode limit
    checked = check_input(data, "big.png", "image/png")
    assert (checked.width, checked.height) == (4200, 4200) and checked.data == data
    with pytest.raises(InputImageError, match="not an image I can read"):
        check_input(big_png(4200, 4200, corrupt=True), "big.png", "image/png")
