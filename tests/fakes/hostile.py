"""Crafted hostile and broken files for the input checks (tests and bench/input_cost.py)."""

from __future__ import annotations

import functools
import io
import os
import random
import struct
import zlib
from collections.abc import Callable

from PIL import Image


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with a correct CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def ihdr(width: int, height: int, depth: int = 8, colour: int = 6, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@functools.cache
def png_bomb(width: int = 6324, height: int = 6324, colour: int = 6, depth: int = 8) -> bytes:
    """A valid PNG of zeros; by default RGBA: ~150 KiB on disk, ~160 MB once decoded (40 megapixels)."""
    bits = {0: 1, 2: 3, 6: 4}[colour] * depth
    row = b"\0" * (1 + (width * bits + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return PNG_SIGNATURE + ihdr(width, height, depth, colour) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@functools.cache
def gif_bomb(width: int = 6324, height: int = 6324) -> bytes:
    """A still GIF of one colour: ~31 KiB on disk, 40 megapixels (160 MB as RGBA)."""
    image = Image.new("P", (width, height), 0)
    image.putpalette([0, 0, 0, 255, 255, 255] * 128)
    out = io.BytesIO()
    image.save(out, "GIF")
    return out.getvalue()


def gif_many_frames(width: int = 6324, height: int = 6324, frames: int = 1200) -> bytes:
    """A huge canvas with over a thousand tiny frames, ~34 KiB."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0))
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x01\x00\x00\x00"
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0x80) + b"\x00\x00\x00\xff\xff\xff"
        out += b"\x02\x02\x44\x01\x00"
    return bytes(out + b"\x3b")


def encode(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **options: object) -> bytes:
    image = Image.new(mode, size)
    bands = len(image.getbands())
    values = [(x * 7 + y * 3) % 256 for y in range(size[1]) for x in range(size[0])]
    image.putdata(values if bands == 1 else [(v,) * bands for v in values])  # type: ignore[arg-type]
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:])
    return out.getvalue()


def png_text_bomb() -> bytes:
    """A zTXt chunk that inflates past Pillow's text limit (ValueError inside Pillow)."""
    text = b"Comment\0\0" + zlib.compress(b"A" * (2 * 1024 * 1024), 9)
    small = encode("PNG")
    return small[:33] + chunk(b"zTXt", text) + small[33:]


def with_chunk_length(data: bytes, length: int) -> bytes:
    """A PNG whose IHDR claims a different chunk length."""
    return data[:8] + struct.pack(">I", length) + data[12:]


def jpeg_huge_header(width: int, height: int) -> bytes:
    """A JPEG whose SOF0 declares another size than it holds."""
    data = bytearray(encode("JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_huge_canvas() -> bytes:
    """A VP8X header declaring a 16384x16384 canvas around a tiny image."""
    data = bytearray(encode("WEBP", lossless=True))
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0, 0, 0, 0]) + (16383).to_bytes(3, "little") * 2
    body = vp8x + bytes(data[12:])
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def dds_like() -> bytes:
    """A DDS header with an unknown pixel format (Pillow raises NotImplementedError for such files)."""
    header = bytearray(128)
    header[0:4] = b"DDS "
    struct.pack_into("<IIIII", header, 4, 124, 0x1007, 64, 64, 0)
    struct.pack_into("<II", header, 76, 32, 0x4)
    header[84:88] = b"ZZZZ"
    return bytes(header) + os.urandom(256)


def mpo() -> bytes:
    """A camera-style MPO (multi-picture JPEG), as phones produce."""
    frames = [Image.new("RGB", (64, 48), (200, 100, 50)), Image.new("RGB", (64, 48), (10, 20, 30))]
    out = io.BytesIO()
    frames[0].save(out, "MPO", save_all=True, append_images=frames[1:])
    return out.getvalue()


def corpus() -> dict[str, Callable[[], bytes]]:
    """Name (with the extension the member used) -> bytes. Every one must be refused, cleanly."""
    jpeg, png, webp, gif = encode("JPEG"), encode("PNG"), encode("WEBP"), encode("GIF", mode="P")
    progressive = encode("JPEG", size=(256, 256), progressive=True)
    rng = random.Random(11)
    files: dict[str, Callable[[], bytes]] = {
        "empty.png": lambda: b"",
        "one-byte.jpg": lambda: b"\xff",
        "random-16.png": lambda: rng.randbytes(16),
        "random-1k.jpg": lambda: rng.randbytes(1024),
        "random-100k.webp": lambda: rng.randbytes(100_000),
        "notes.png": lambda: b"just some text, honestly\n" * 20,
        "page.jpg": lambda: b"<!doctype html><html><body>hi</body></html>",
        "script.gif": lambda: b"#!/bin/sh\nrm -rf /\n",
        "archive.png": lambda: b"PK\x03\x04" + rng.randbytes(200),
        "document.png": lambda: b"%PDF-1.7\n" + rng.randbytes(200),
        "vector.png": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9e9" height="9e9"/>',
        "postscript.jpg": lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n",
        "bitmap.png": lambda: encode("BMP"),
        "scan.jpg": lambda: encode("TIFF"),
        "icon.png": lambda: encode("ICO"),
        "targa.png": lambda: encode("TGA"),
        "texture.png": dds_like,
        "pcx.jpg": lambda: encode("PCX"),
        "jpeg-soi-only.jpg": lambda: jpeg[:2],
        "jpeg-header-only.jpg": lambda: jpeg[: jpeg.index(b"\xff\xda")],
        "jpeg-truncated-half.jpg": lambda: jpeg[: len(jpeg) // 2],
        "jpeg-truncated-end.jpg": lambda: jpeg[:-40],
        "jpeg-progressive-truncated.jpg": lambda: progressive[: len(progressive) * 2 // 3],
        "jpeg-garbage-scan.jpg": lambda: jpeg[: jpeg.index(b"\xff\xda") + 12] + rng.randbytes(300),
        "jpeg-huge-header.jpg": lambda: jpeg_huge_header(65000, 65000),
        "jpeg-zero-height.jpg": lambda: jpeg_huge_header(64, 0),
        "png-signature-only.png": lambda: PNG_SIGNATURE,
        "png-ihdr-only.png": lambda: PNG_SIGNATURE + ihdr(64, 48),
        "png-truncated-idat.png": lambda: png[: len(png) - 30],
        "png-bad-crc.png": lambda: png[:29] + bytes([png[29] ^ 0xFF]) + png[30:],
        "png-text-bomb.png": png_text_bomb,
        "png-chunk-length-huge.png": lambda: with_chunk_length(png, 0x7FFFFFFF),
        "png-zero-size.png": lambda: PNG_SIGNATURE + ihdr(0, 0) + chunk(b"IEND", b""),
        "png-bad-depth.png": lambda: PNG_SIGNATURE + ihdr(64, 48, depth=7) + png[33:],
        "png-40mp-bomb.png": png_bomb,
        "png-100mp-bomb.png": lambda: png_bomb(10000, 10000, colour=0, depth=1),
        "png-200mp-header.png": lambda: PNG_SIGNATURE + ihdr(20000, 10000) + png[33:],
        "png-4gp-header.png": lambda: PNG_SIGNATURE + ihdr(65535, 65535) + png[33:],
        "png-max-width.png": lambda: PNG_SIGNATURE + ihdr(0x7FFFFFFF, 1) + png[33:],
        "png-idat-garbage.png": lambda: PNG_SIGNATURE + ihdr(64, 48) + chunk(b"IDAT", rng.randbytes(500)),
        "apng.png": lambda: animated("PNG"),
        "animated.webp": lambda: animated("WEBP"),
        "animated.gif": lambda: animated("GIF"),
        "gif-many-frames.gif": gif_many_frames,
        "gif-40mp-bomb.gif": gif_bomb,
        "gif-truncated.gif": lambda: gif[: len(gif) // 2],
        "gif-header-only.gif": lambda: gif[:13],
        "webp-truncated.webp": lambda: webp[: len(webp) // 2],
        "webp-riff-only.webp": lambda: webp[:12],
        "webp-huge-canvas.webp": webp_huge_canvas,
        "webp-garbage.webp": lambda: webp[:20] + rng.randbytes(200),
        "png-as-jpg-truncated.jpg": lambda: png[:50],
        "jpeg-as-png-truncated.png": lambda: jpeg[:100],
    }
    return files
