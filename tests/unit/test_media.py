from __future__ import annotations

import contextlib
import io
import os

import pytest
from PIL import Image

from bot.media import ImageError, fit_image, per_file_budget
from tests.fakes import hostile
from tests.fakes.images import noise_png, png


def test_small_images_are_kept_as_they_are() -> None:
    out = fit_image(png(), 1_000_000, "img")
    assert out.data == png() and out.filename == "img.png" and not out.compressed


def test_oversize_images_are_reencoded_under_the_budget() -> None:
    data = noise_png(600, 600)
    budget = len(data) // 2
    out = fit_image(data, budget, "img")
    assert len(out.data) <= budget and out.compressed and out.filename == "img.jpg"
    assert Image.open(io.BytesIO(out.data)).format == "JPEG" and out.content_type == "image/jpeg"


def test_transparent_images_keep_their_transparency_when_reencoded() -> None:
    image = Image.frombytes("RGBA", (400, 400), os.urandom(400 * 400 * 4))
    raw = io.BytesIO()
    image.save(raw, "PNG", compress_level=1)
    out = fit_image(raw.getvalue(), len(raw.getvalue()) // 2, "img")
    assert out.filename == "img.webp" and Image.open(io.BytesIO(out.data)).mode == "RGBA"


def test_opaque_alpha_is_dropped_so_the_fast_encoder_applies() -> None:
    image = Image.frombytes("RGB", (400, 400), os.urandom(400 * 400 * 3)).convert("RGBA")
    raw = io.BytesIO()
    image.save(raw, "PNG", compress_level=1)
    out = fit_image(raw.getvalue(), len(raw.getvalue()) // 2, "img")
    assert out.filename == "img.jpg"


def test_downscales_only_when_reencoding_is_not_enough() -> None:
    data = noise_png(600, 600)
    out = fit_image(data, 60_000, "img")
    assert len(out.data) <= 60_000 and out.width < 600 and out.width > 100


def test_impossible_budget_is_a_clear_error() -> None:
    with pytest.raises(ImageError, match="cannot fit"):
        fit_image(noise_png(600, 600), 500, "img")


@pytest.mark.parametrize("data", [b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, png()[:60]])
def test_non_images_and_corrupt_images_are_refused(data: bytes) -> None:
    with pytest.raises(ImageError):
        fit_image(data, 10_000_000, "img")


def test_decompression_bombs_are_refused_before_decoding() -> None:
    out = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(out, "PNG")  # tiny file, 144 Mpx
    with pytest.raises(ImageError, match=r"not a recognisable|too many pixels"):
        fit_image(out.getvalue(), 10_000_000, "img")


def test_budget_shares_discords_request_cap_between_files() -> None:
    ten_mib = 10 * 1024 * 1024
    assert per_file_budget(ten_mib, 1) == ten_mib
    assert per_file_budget(ten_mib, 4) * 4 < 25 * 1024 * 1024


def test_results_that_are_mpo_or_hostile_never_crash_fitting() -> None:
    fitted = fit_image(hostile.mpo(), 1_000_000, "r")
    assert fitted.filename == "r.jpg" and fitted.content_type == "image/jpeg"
    for make in hostile.corpus().values():  # a provider's bytes are as untrusted as a member's
        with contextlib.suppress(ImageError):  # anything else would escape the runner's error handling
            fit_image(make(), 64_000_000, "r")
