from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.errors import InvalidRequest
from bot.media import MAX_INPUT_BYTES, InputImageError, check_input
from bot.providers.catalog import ImageOptions, api_params, build_edit_input
from tests.fakes.images import png


def encode(fmt: str, size: tuple[int, int] = (32, 24), mode: str = "RGB", **kw: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 128).save(out, fmt, **kw)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "declared", "suffix"),
    [
        ("PNG", "image/png", "png"),
        ("JPEG", "image/jpeg", "jpg"),
        ("WEBP", "image/webp", "webp"),
        ("JPEG", "image/png", "jpg"),  # the declared type lies: the sniffed one wins
        ("PNG", None, "png"),
    ],
)
def test_real_images_pass_unchanged(fmt: str, declared: str | None, suffix: str) -> None:
    data = encode(fmt)
    checked = check_input(data, "photo.bin", declared)
    assert checked.data == data and checked.filename == f"photo.{suffix}"
    assert (checked.width, checked.height) == (32, 24)


def test_a_still_gif_becomes_png_and_says_so() -> None:
    checked = check_input(encode("GIF", mode="P"), "a.gif", "image/gif")
    assert checked.content_type == "image/png" and Image.open(io.BytesIO(checked.data)).format == "PNG"
    assert checked.note == "the GIF was converted to PNG"


def test_animated_gifs_are_refused() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(InputImageError, match="animated"):
        check_input(out.getvalue(), "a.gif", "image/gif")


@pytest.mark.parametrize(
    ("data", "declared", "needle"),
    [
        (b"hello", "text/plain", "is not an image (it is text/plain)"),
        (b"not an image at all", None, "not an image I can read"),
        (png()[:70], "image/png", "damaged"),
        (encode("BMP"), "image/bmp", "not an image I can read (it may be damaged or in another format)"),
    ],
)
def test_bad_files_get_a_reason(data: bytes, declared: str | None, needle: str) -> None:
    with pytest.raises(InputImageError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        check_input(data, "x", declared)


def test_oversize_and_huge_dimensions_are_refused_before_decoding() -> None:
    with pytest.raises(InputImageError, match="at most 10 MB"):
        check_input(b"\x89PNG" + b"\0" * MAX_INPUT_BYTES, "big.png", "image/png")
    bomb = encode("PNG", size=(9000, 9000), mode="1")  # 81 Mpx in a tiny file
    assert len(bomb) < 100_000
    with pytest.raises(InputImageError, match=r"too large: it is 9000×9000 pixels"):
        check_input(bomb, "bomb.png", "image/png")


def test_edit_requests_are_checked_against_the_model() -> None:
    with pytest.raises(InvalidRequest, match="does not take a mask; only GPT Image 2 Edit"):
        build_edit_input("nano-banana-edit", "snow", 1, ImageOptions(), has_mask=True)
    with pytest.raises(InvalidRequest, match="at most 4"):
        build_edit_input("nano-banana-edit", "snow", 5, ImageOptions(), has_mask=False)
    with pytest.raises(InvalidRequest, match="Attach the image"):
        build_edit_input("nano-banana-edit", "snow", 0, ImageOptions(), has_mask=False)
    with pytest.raises(InvalidRequest, match="Unknown edit model"):
        build_edit_input("nano-banana", "snow", 1, ImageOptions(), has_mask=False)
    payload = build_edit_input("gpt-image-2-edit", "snow", 2, ImageOptions(aspect_ratio="16:9"), has_mask=True)
    params = api_params(payload)
    assert "image_urls" not in params and "mask_url" not in params  # filled in with hosted URLs at submit
    assert params["image_size"] == {"width": 1360, "height": 768}
