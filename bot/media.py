"""Image bytes: sniff and bound them, and fit results under Discord's upload limits. Blocking: run in a thread."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from bot.media_input import MAX_INPUT_BYTES, MAX_INPUT_PIXELS, InputImage, InputImageError, check_input

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_INPUT_PIXELS",
    "ImageError",
    "InputImage",
    "InputImageError",
    "OutputImage",
    "TooLargeToPost",
    "check_input",
    "fit_image",
    "per_file_budget",
]

MAX_PIXELS = 50_000_000  # refuse larger images before decoding them (decompression bombs)
REQUEST_BODY_LIMIT = 25 * 1024 * 1024  # Discord's cap on one message request, all files together
MULTIPART_OVERHEAD = 256 * 1024
MIN_EDGE = 256
# Re-encoding: JPEG through libjpeg-turbo is ~20x faster than WebP method 4 on a 4K image at the same PSNR
# (bench/encode.py: quality 92 gives 35.1 dB in 0.1 s, WebP q85 m4 34.7 dB in 2 s). Images with real
# transparency, which JPEG cannot hold, use WebP's fastest method.
JPEG_QUALITIES = (92, 85)
DOWNSCALED_JPEG_QUALITY = 85
WEBP_METHOD = 0
_FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
    "MPO": ("jpg", "image/jpeg"),  # what Pillow calls a JPEG with extra frames (as cameras write them)
}
_OPENERS = ["PNG", "JPEG", "WEBP", "GIF"]  # the only parsers that see result bytes (JPEG's yields MPO too)


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
    """Open and decode a result image; any parser error on foreign bytes is an ImageError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_OPENERS)
    except Exception as exc:
        raise ImageError("not a recognisable image") from exc
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"image is {image.width}x{image.height}, too many pixels")
    try:
        image.load()
    except Exception as exc:
        raise ImageError("image data is corrupt") from exc
    return image


def fit_image(data: bytes, budget: int, stem: str) -> OutputImage:
    """Return the image unchanged if it fits `budget` bytes, else re-encoded (JPEG, or WebP if it has
    transparency) and downscaled only as needed."""
    image = _open(data)
    fmt = str(image.format)
    ext, content_type = _FORMATS[fmt]
    if len(data) <= budget:
        return OutputImage(data, f"{stem}.{ext}", content_type, image.width, image.height, compressed=False)
    image = _flatten(image)
    encode = _encoder(image)
    ext, content_type = ("webp", "image/webp") if image.mode == "RGBA" else ("jpg", "image/jpeg")
    for quality in JPEG_QUALITIES:
        encoded = encode(image, quality)
        if len(encoded) <= budget:
            return OutputImage(encoded, f"{stem}.{ext}", content_type, image.width, image.height, compressed=True)
    scaled = image
    size = len(encoded)
    while True:
        factor = math.sqrt(budget / size) * 0.92
        width, height = int(scaled.width * factor), int(scaled.height * factor)
        if min(width, height) < MIN_EDGE:
            raise TooLargeToPost(f"cannot fit the image under {budget} bytes")
        scaled = image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        encoded = encode(scaled, DOWNSCALED_JPEG_QUALITY)
        size = len(encoded)
        if size <= budget:
            return OutputImage(encoded, f"{stem}.{ext}", content_type, width, height, compressed=True)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, or RGBA only when some pixel is actually transparent."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    if image.mode == "RGBA":
        low, _ = image.getchannel("A").getextrema()
        if low == 255:
            image = image.convert("RGB")
    return image


def _encoder(image: Image.Image) -> Callable[[Image.Image, int], bytes]:
    return _webp if image.mode == "RGBA" else _jpeg


def fit_inputs(images: list[InputImage], files: int, upload_limit: int) -> list[InputImage]:
    """An edit's images, the large ones re-encoded so that all `files` (the images and any mask, which is never
    touched) fit one message: the status message that hosts them must stay within Discord's limits."""
    budget = per_file_budget(upload_limit, files)
    fitted = []
    for index, image in enumerate(images):
        if len(image.data) <= budget:
            fitted.append(image)
            continue
        small = fit_image(image.data, budget, f"input-{index + 1}")
        note = "compressed to fit Discord's upload limit"
        fitted.append(InputImage(small.data, small.filename, small.content_type, small.width, small.height, note))
    return fitted


def _webp(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=quality, method=WEBP_METHOD)
    return out.getvalue()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()
