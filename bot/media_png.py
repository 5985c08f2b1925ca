"""Check that a PNG decodes without holding its pixels: a few kilobytes of memory at any size.

Pillow decodes a whole image into memory (160 MB for 40 megapixels). For big PNGs this walks the chunks
instead, checks every CRC, and inflates the image data in small steps, counting scanlines: the data must
inflate to exactly the scanlines the header declares, each starting with a valid filter type.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_STEP = 256 * 1024  # inflated bytes per step


class PngError(ValueError):
    """The PNG's structure or data is broken."""


def verify_png(data: bytes) -> None:
    """Raise PngError unless `data` is a complete, consistent, single-image PNG."""
    if not data.startswith(SIGNATURE):
        raise PngError("no PNG signature")
    header: bytes | None = None
    palette = False
    scan = None
    pos = len(SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise PngError("truncated before IEND")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data):
            raise PngError("truncated chunk")
        body = data[pos + 8 : pos + 8 + length]
        if zlib.crc32(kind + body) != int.from_bytes(data[end - 4 : end], "big"):
            raise PngError(f"bad CRC in {kind!r}")
        if kind == b"IHDR":
            header = body
        elif kind == b"PLTE":
            palette = True
        elif kind == b"IDAT":
            if header is None:
                raise PngError("IDAT before IHDR")
            if scan is None:
                scan = _Scanlines(header)
            scan.feed(body)
        elif kind == b"IEND":
            break
        pos = end
    if header is None or scan is None:
        raise PngError("no image data")
    if header[9] == 3 and not palette:
        raise PngError("palette image without a palette")
    scan.finish()


class _Scanlines:
    """Inflates IDAT data step by step and checks it against the scanlines IHDR declares."""

    def __init__(self, header: bytes) -> None:
        if len(header) != 13:
            raise PngError("bad IHDR")
        width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
        depth, colour, interlace = header[8], header[9], header[12]
        if colour not in _CHANNELS or width < 1 or height < 1:
            raise PngError("bad IHDR")
        self._rows = _row_sizes(width, height, depth * _CHANNELS[colour], interlaced=interlace == 1)
        self._left = next(self._rows, 0)  # bytes left in the current row (0: no rows left)
        self._at_row_start = True  # the next byte is a row's filter type
        self._inflater = zlib.decompressobj()

    def feed(self, compressed: bytes) -> None:
        pending = compressed
        while pending:
            self._check(self._inflater.decompress(pending, _STEP))
            pending = self._inflater.unconsumed_tail
            if self._inflater.eof and pending:
                raise PngError("data after the end of the image stream")

    def finish(self) -> None:
        self._check(self._inflater.flush())
        if not self._inflater.eof or self._left:
            raise PngError("image data ends early")

    def _check(self, chunk: bytes) -> None:
        at = 0
        while at < len(chunk):
            if not self._left:
                raise PngError("more image data than the header declares")
            if self._at_row_start and chunk[at] > 4:
                raise PngError("bad filter type")
            take = min(self._left, len(chunk) - at)
            at += take
            self._left -= take
            self._at_row_start = not self._left
            if not self._left:
                self._left = next(self._rows, 0)


def _row_sizes(width: int, height: int, bits_per_pixel: int, *, interlaced: bool) -> Iterator[int]:
    """Bytes of each scanline in order (filter byte included), for the whole image or each Adam7 pass."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    for x0, y0, dx, dy in passes:
        pass_width = math.ceil((width - x0) / dx) if width > x0 else 0
        pass_height = math.ceil((height - y0) / dy) if height > y0 else 0
        if pass_width and pass_height:
            row = 1 + (pass_width * bits_per_pixel + 7) // 8
            for _ in range(pass_height):
                yield row
