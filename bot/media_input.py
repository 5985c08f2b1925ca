"""Untrusted input images: sniff, bound and check them before anything is sent. Blocking: run in a thread.

The cost of a check is bounded before any pixel is decoded: the header's declared size is read first
(`Image.open` is lazy), images that would take far more memory to decode than their file size suggests
(decompression bombs) are refused from the header alone, JPEGs are decoded at 1/8 scale (`Image.draft`,
which still reads every byte of the compressed data), and GIFs are scanned for a second frame without
decoding any. No check holds more than MAX_DECODE_BYTES: bigger PNGs are verified as a stream
(bot/media_png.py), bigger WebP, GIF and progressive JPEG images are refused as too large. Whatever Pillow
raises on a malformed file, the member gets the same clear refusal.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image

from bot.errors import UserFacingError
from bot.i18n import Msg, msg
from bot.media_png import verify_png

log = logging.getLogger(__name__)

MAX_INPUT_BYTES = 10 * 1024 * 1024  # the documented provider limit per input image
MAX_INPUT_PIXELS = 40_000_000
FREE_DECODE_BYTES = 32 * 1024 * 1024  # decoding up to this much memory needs no further justification
MAX_DECODE_RATIO = 64  # beyond that, decoded bytes may be at most this many times the file size
MAX_DECODE_BYTES = 64 * 1024 * 1024  # no check holds more than this: bigger PNGs are verified as a stream
_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WEBP", "GIF": "GIF"}  # MPO: camera JPEGs
_OPENERS = ["PNG", "JPEG", "WEBP", "GIF"]  # the only parsers that see the bytes; JPEG's also yields MPO
_TYPES = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
_ONE_BYTE_MODES = ("1", "L", "P")


class InputImageError(UserFacingError):
    """An input image the bot will not send; the message (a catalogue key) says why, in words a user understands."""


@dataclass(frozen=True)
class InputImage:
    """A checked input image, ready to host and send."""

    data: bytes
    filename: str
    content_type: str
    width: int
    height: int
    note: str | None = None  # e.g. a GIF converted to PNG


def unreadable(label: str) -> Msg:
    """The one refusal for every file that is not a usable PNG, JPEG, WebP or still GIF."""
    return msg("input.unreadable", label=label)


def too_large(label: str, detail: Msg) -> Msg:
    return msg("input.too_large", label=label, detail=detail, limit=MAX_INPUT_PIXELS // 1_000_000)


def check_input(data: bytes, filename: str, declared_type: str | None) -> InputImage:
    """Check an untrusted upload: size, real type (not the declared one), cost before decoding, decodes.

    PNG, JPEG (MPO too) and WebP pass unchanged; a still GIF becomes PNG; animated images are refused.
    Raises InputImageError only, whatever the bytes are.
    """
    label = filename or "the file"
    if declared_type and not declared_type.startswith("image/"):
        raise InputImageError("input.not_image", label=label, type=declared_type)
    if len(data) > MAX_INPUT_BYTES:
        raise InputImageError(
            "input.file_too_big",
            label=label,
            size=f"{len(data) / 1024 / 1024:.1f}",
            limit=MAX_INPUT_BYTES // 1024 // 1024,
        )
    try:
        return _check(data, filename, label)
    except InputImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own hard stop, far beyond our limit
        raise InputImageError(too_large(label, msg("input.detail_far_too_many"))) from exc
    except Exception as exc:
        log.debug("input %r refused: %s: %s", label, type(exc).__name__, exc)
        raise InputImageError(unreadable(label)) from exc


def _check(data: bytes, filename: str, label: str) -> InputImage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limits below are stricter
        image = Image.open(io.BytesIO(data), formats=_OPENERS)
    fmt = _FORMATS[str(image.format)]
    width, height = image.size
    if width < 1 or height < 1:
        raise InputImageError(unreadable(label))
    if width * height > MAX_INPUT_PIXELS:
        raise InputImageError(too_large(label, msg("input.detail_pixels", width=width, height=height)))
    if _animated(image, fmt, data):
        raise InputImageError("input.animated", label=label)
    decoded = _decode_bytes(image, fmt)
    if decoded > FREE_DECODE_BYTES and decoded > MAX_DECODE_RATIO * len(data):
        raise InputImageError(
            too_large(label, msg("input.detail_packed", width=width, height=height, kb=len(data) // 1024))
        )
    stem = (filename.rsplit(".", 1)[0] or "image")[:60]
    if decoded > MAX_DECODE_BYTES:
        if fmt != "PNG":
            kind, per_pixel = {"JPEG": ("progressive JPEG", 3), "WEBP": ("WebP", 4), "GIF": ("GIF", 5)}[fmt]
            limit = MAX_DECODE_BYTES // per_pixel // 1_000_000
            raise InputImageError("input.too_large_kind", label=label, kind=kind, limit=limit)
        verify_png(data)
    else:
        if fmt == "JPEG":
            image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))  # DCT scaling: 1/64 of the memory
        image.load()
    if fmt == "GIF":
        out = io.BytesIO()
        image.convert("RGBA").save(out, "PNG", compress_level=1)
        note = "the GIF was converted to PNG"
        return InputImage(out.getvalue(), f"{stem}.png", "image/png", width, height, note=note)
    ext, content_type = _TYPES[fmt]
    return InputImage(data, f"{stem}.{ext}", content_type, width, height)


def _decode_bytes(image: Image.Image, fmt: str) -> int:
    """Memory a full check of this image would take, from its header."""
    width, height = image.size
    if fmt == "JPEG":
        if not image.info.get("progressive"):
            return 0  # decoded at 1/8 scale, row by row
        # libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes each), whatever the scale
        layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
        h_max, v_max = max(h for _, h, _, _ in layers), max(v for _, _, v, _ in layers)
        return sum(width * height * h * v * 2 // (h_max * v_max) for _, h, v, _ in layers)
    if fmt == "GIF":
        return width * height * 5  # the palette image, then RGBA to convert it to PNG
    return width * height * (1 if image.mode in _ONE_BYTE_MODES else 4)


def _animated(image: Image.Image, fmt: str, data: bytes) -> bool:
    if fmt == "GIF":
        return gif_frames(data, stop_at=2) > 1
    if fmt == "JPEG":
        return False  # an MPO's extra frames are previews or depth maps of one photo
    return bool(getattr(image, "n_frames", 1) > 1)  # PNG (acTL) and WebP report this from headers


def gif_frames(data: bytes, stop_at: int) -> int:
    """Count a GIF's image descriptors by walking its blocks, decoding nothing; stop once `stop_at` are seen."""
    if len(data) < 13 or data[:3] != b"GIF":
        raise InputImageError("input.not_gif")
    pos = 13
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 0x07) + 1)
    frames = 0
    while pos < len(data) and frames < stop_at:
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor, optional local colour table, LZW size, sub-blocks
            frames += 1
            if pos + 10 > len(data):
                break
            flags = data[pos + 9]
            pos += 10
            if flags & 0x80:
                pos += 3 << ((flags & 0x07) + 1)
            pos = _skip_sub_blocks(data, pos + 1)
        else:
            break
    return frames


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos
