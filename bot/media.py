"""Image bytes: sniff and bound them, and fit results under Discord's upload limits. Blocking: run in a thread."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (decompression bombs)
REQUEST_BODY_LIMIT = 25 * 1024 * 1024  # Discord's cap on one message request, all files together
MULTIPART_OVERHEAD = 256 * 1024
MIN_EDGE = 256
_FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
}


class ImageError(Exception):
    """Bytes that are not a usable image, or an image that cannot be made small enough."""


class TooLargeToPost(ImageError):
    """A valid image that cannot be made small enough for the upload limit."""


@dataclass(frozen=True)
class OutputImage:
    """An image ready to upload."""

    data: bytes
    filename: str
    content_type: str
    width: int
    height: int
    compressed: bool


def per_file_budget(upload_limit: int, count: int) -> int:
    """Bytes one file may take when `count` files share one message."""
    share = (REQUEST_BODY_LIMIT - MULTIPART_OVERHEAD) // max(1, count)
    return min(upload_limit, share)


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("not a recognisable image") from exc
    if image.format not in _FORMATS:
        raise ImageError(f"unsupported image format {image.format}")
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"image is {image.width}x{image.height}, too many pixels")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError("image data is corrupt") from exc
    return image


def fit_image(data: bytes, budget: int, stem: str) -> OutputImage:
    """Return the image unchanged if it fits `budget` bytes, else re-encoded (WebP) and downscaled only as needed."""
    image = _open(data)
    fmt = str(image.format)
    ext, content_type = _FORMATS[fmt]
    if len(data) <= budget:
        return OutputImage(data, f"{stem}.{ext}", content_type, image.width, image.height, compressed=False)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    for quality in (92, 85):
        encoded = _webp(image, quality)
        if len(encoded) <= budget:
            return OutputImage(encoded, f"{stem}.webp", "image/webp", image.width, image.height, compressed=True)
    scaled = image
    size = len(encoded)
    while True:
        factor = math.sqrt(budget / size) * 0.92
        width, height = int(scaled.width * factor), int(scaled.height * factor)
        if min(width, height) < MIN_EDGE:
            raise TooLargeToPost(f"cannot fit the image under {budget} bytes")
        scaled = image.resize((width, height), Image.Resampling.LANCZOS)
        encoded = _webp(scaled, 85)
        size = len(encoded)
        if size <= budget:
            return OutputImage(encoded, f"{stem}.webp", "image/webp", width, height, compressed=True)


def _webp(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=quality, method=4)
    return out.getvalue()


MAX_INPUT_BYTES = 10 * 1024 * 1024  # the documented provider limit per input image
MAX_INPUT_PIXELS = 40_000_000
_INPUT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class InputImageError(Exception):
    """An input image the bot will not send; the message says why, in words a user understands."""


@dataclass(frozen=True)
class InputImage:
    """A checked input image, ready to host and send."""

    data: bytes
    filename: str
    content_type: str
    width: int
    height: int
    note: str | None = None  # e.g. a GIF converted to PNG


def check_input(data: bytes, filename: str, declared_type: str | None) -> InputImage:
    """Check an untrusted upload: size, real type (not the declared one), pixel count before decoding, decodes.

    PNG, JPEG and WebP pass unchanged; a still GIF becomes PNG; animated images are refused.
    """
    label = filename or "the file"
    if declared_type and not declared_type.startswith("image/"):
        raise InputImageError(f"`{label}` is not an image (it is {declared_type}). Send a PNG, JPEG or WebP.")
    if len(data) > MAX_INPUT_BYTES:
        raise InputImageError(
            f"`{label}` is {len(data) / 1024 / 1024:.1f} MB; images can be at most "
            f"{MAX_INPUT_BYTES // 1024 // 1024} MB."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputImageError(f"`{label}` is not an image I can read. Send a PNG, JPEG or WebP.") from exc
    if image.format not in _INPUT_TYPES:
        raise InputImageError(f"`{label}` is a {image.format} image; send a PNG, JPEG or WebP.")
    if image.width * image.height > MAX_INPUT_PIXELS:
        raise InputImageError(
            f"`{label}` is {image.width}×{image.height} pixels; "
            f"the limit is {MAX_INPUT_PIXELS // 1_000_000} megapixels."
        )
    if getattr(image, "n_frames", 1) > 1:
        raise InputImageError(f"`{label}` is animated; send a still image (PNG, JPEG or WebP).")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(f"`{label}` is damaged and can't be opened. Try saving it again.") from exc
    stem = (filename.rsplit(".", 1)[0] or "image")[:60]
    if image.format == "GIF":
        out = io.BytesIO()
        image.convert("RGBA").save(out, "PNG")
        return InputImage(
            out.getvalue(), f"{stem}.png", "image/png", image.width, image.height, note="the GIF was converted to PNG"
        )
    ext = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[str(image.format)]
    return InputImage(data, f"{stem}.{ext}", _INPUT_TYPES[str(image.format)], image.width, image.height)
