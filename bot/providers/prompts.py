"""Text from members, judged as a person would see it: invisible characters do not make a prompt, and
validation errors are put in words."""

from __future__ import annotations

import unicodedata

from pydantic import ValidationError


def is_blank(text: str) -> bool:
    """True when nothing visible is left once whitespace and invisible format characters (U+200B-U+200F,
    U+2060, U+FEFF, soft hyphens, ...: Unicode category Cf) are removed."""
    return all(_invisible(ch) for ch in text)


def clean_prompt(text: str) -> str:
    """The prompt without leading or trailing whitespace and invisible characters (inner ones are kept:
    emoji sequences need U+200D)."""
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    return text[start:end]


_INVISIBLE_CATEGORIES = ("Cf", "Cc", "Zl", "Zp")
_BLANK_LOOKING = frozenset("\u034f\u115f\u1160\u2800\u3164\uffa0")  # letters and marks that render as nothing


def _invisible(ch: str) -> bool:
    return ch.isspace() or ch in _BLANK_LOOKING or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


_FIELD_NAMES = {"num_images": "count", "image_size": "size", "image_urls": "images", "mask_url": "mask"}


def describe_invalid(exc: ValidationError) -> str:
    """A pydantic error in words for people: the user's option names, no URLs or type names."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = [str(x) for x in error["loc"] if isinstance(x, str)]
        name = _FIELD_NAMES.get(loc[0], loc[0]) if loc else "request"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"`{name}`: {message[0].lower() + message[1:] if message else 'not allowed'}")
    return "; ".join(dict.fromkeys(parts)) or "it was refused"
