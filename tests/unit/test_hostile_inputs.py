"""Hostile and broken uploads: one clear refusal each, never a traceback, at a bounded cost."""

from __future__ import annotations

import logging
import time

import pytest

from bot.errors import InvalidRequest
from bot.media import InputImageError, check_input
from bot.providers.catalog import ImageOptions, build_edit_input, build_input
from bot.providers.prompts import is_blank
from tests.fakes import hostile

CORPUS = hostile.corpus()
REFUSALS = ("is not an image I can read", "is too large", "is animated")


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 50


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_hostile_file_is_refused_in_plain_words(name: str, caplog: pytest.LogCaptureFixture) -> None:
    data = CORPUS[name]()
    with caplog.at_level(logging.DEBUG), pytest.raises(InputImageError) as refused:
        check_input(data, name, None)
    message = str(refused.value)
    assert message.startswith(f"`{name}` ") and any(r in message for r in REFUSALS), message
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("name", ["png-40mp-bomb.png", "gif-40mp-bomb.gif"])
def test_decompression_bombs_are_refused_from_the_header(name: str) -> None:
    data = CORPUS[name]()
    started = time.perf_counter()
    with pytest.raises(InputImageError, match="is too large: 6324×6324 pixels packed into"):
        check_input(data, name, None)
    assert time.perf_counter() - started < 0.3  # decoding them took 0.6-1.6 s


def test_a_real_oversized_png_says_it_is_too_large() -> None:
    real = hostile.png_bomb(12000, 12000, colour=0, depth=1)  # a valid 12000x12000 image
    with pytest.raises(InputImageError, match="is too large: it is 12000×12000 pixels"):
        check_input(real, "panorama.png", "image/png")


def test_a_camera_mpo_counts_as_jpeg() -> None:
    checked = check_input(hostile.mpo(), "IMG_0001.JPG", "image/jpeg")
    assert checked.content_type == "image/jpeg" and checked.filename == "IMG_0001.jpg"
    assert (checked.width, checked.height) == (64, 48)


def test_big_jpegs_are_checked_at_reduced_scale() -> None:
    data = hostile.encode("JPEG", size=(1600, 1200))
    assert check_input(data, "photo.jpg", "image/jpeg").data == data


@pytest.mark.parametrize("prompt", ["\u200b", "\u200b\u200c\u200d\u200e\u200f", " \u2060\ufeff ", "\u3164", "\u00ad\n"])
def test_prompts_of_invisible_characters_are_empty(prompt: str) -> None:
    assert is_blank(prompt)
    with pytest.raises(InvalidRequest, match="the prompt is empty"):
        build_input("nano-banana", prompt, ImageOptions())
    with pytest.raises(InvalidRequest, match="the prompt is empty"):
        build_edit_input("nano-banana-edit", prompt, 1, ImageOptions(), has_mask=False)


def test_emoji_sequences_keep_their_joiners() -> None:
    payload = build_input("nano-banana", "\u200b a 👩\u200d🚀 \ufeff", ImageOptions())
    assert payload.prompt == "a 👩\u200d🚀"


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (ImageOptions(count=9), "`count` must be a whole number from 1 to 4."),
        (ImageOptions(count=0), "`count` must be a whole number from 1 to 4."),
        (ImageOptions(seed=-1), "`seed` must be a whole number from 0 to 2147483647."),
        (ImageOptions(seed=2**40), "`seed` must be a whole number from 0 to 2147483647."),
    ],
)
def test_out_of_range_options_from_a_modified_client_are_explained(options: ImageOptions, needle: str) -> None:
    for build in (
        lambda: build_input("nano-banana", "a fox", options),
        lambda: build_edit_input("nano-banana-edit", "a fox", 1, options, has_mask=False),
    ):
        with pytest.raises(InvalidRequest) as refused:
            build()
        assert str(refused.value) == needle
        assert "pydantic" not in str(refused.value) and "input_value" not in str(refused.value)
