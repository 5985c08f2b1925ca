"""Discord-free moderation rules: blocklist matching and the channel allow-list decision.

Blocklist terms match case-insensitively as whole words or whole phrases ("kill" never matches inside
"skill"). Both the term and the text are reduced to the same token sequence, so punctuation, repeated
spaces, line breaks, accents, full-width letters and invisible characters cannot hide a term:

- Unicode NFKC, format characters (zero-width space/joiner, soft hyphen) dropped, accents on letters of
  cased scripts dropped, then case-folded: "Kíll", full-width "KILL" and "ki\\u200bll" all become "kill".
- A word is a run of letters and digits; anything else separates words.
- Scripts written without spaces between words (Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar,
  Tibetan) have no word boundaries to honour, so each of their characters is a token of its own:
  a term in those scripts matches wherever its characters appear in a row.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Iterable

from bot.errors import InvalidRequest

MAX_TERM_CHARS = 100
MAX_TERMS = 200

# Scripts written without spaces between words (Unicode character name prefixes).
_UNSPACED = (
    "CJK ",
    "HIRAGANA",
    "KATAKANA",
    "HALFWIDTH KATAKANA",
    "THAI",
    "LAO",
    "KHMER",
    "MYANMAR",
    "TIBETAN",
    "IDEOGRAPHIC",
)


def _is_unspaced(char: str) -> bool:
    return unicodedata.name(char, "").startswith(_UNSPACED)


def _has_case(char: str) -> bool:
    return char.lower() != char.upper()


def _fold(char: str) -> str:
    """One character without the accents of cased scripts (Latin, Greek, Cyrillic...): "í" -> "i".

    Marks of scripts without case (Devanagari vowel signs, Japanese dakuten) carry meaning and are kept.
    """
    parts = unicodedata.normalize("NFKD", char)
    if len(parts) > 1 and _has_case(parts[0]):
        return "".join(c for c in parts if unicodedata.category(c) not in ("Mn", "Me"))
    return char


_ASCII_WORD = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> tuple[str, ...]:
    """The comparable word sequence of a text (see the module docstring)."""
    if text.isascii():  # most prompts: nothing to normalise, fold or split by character (25x faster)
        return tuple(_ASCII_WORD.findall(text.lower()))
    out: list[str] = []
    word: list[str] = []
    previous = ""
    for char in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(char)
        if category == "Cf":  # zero-width space and joiners, soft hyphen, direction marks
            continue
        if category in ("Mn", "Me") and (not previous or _has_case(previous)):
            continue  # a stray accent (e.g. stacked "zalgo" marks) on a cased letter
        if category[0] in "LNM":
            previous = char if category[0] != "M" else previous
            if _is_unspaced(char):
                if word:
                    out.append("".join(word))
                    word = []
                out.append(char)
            else:
                word.append(_fold(char))
            continue
        previous = ""
        if word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return tuple(w.casefold() for w in out)


def term_key(term: str) -> str:
    """The normalised form two terms are compared by (equal keys are the same term)."""
    return " ".join(tokens(term))


class TermError(InvalidRequest, ValueError):
    """A term that cannot be blocked, or a full blocklist (a ValueError too, for callers that check values)."""


def clean_term(term: str) -> str:
    """The term as it will be stored and shown: trimmed, inner whitespace collapsed.

    Raises TermError with a message for the admin when it cannot be a term.
    """
    cleaned = " ".join(term.split())
    if not tokens(cleaned):
        raise TermError("blocklist.term_empty")
    if len(cleaned) > MAX_TERM_CHARS:
        raise TermError("blocklist.term_too_long", limit=MAX_TERM_CHARS)
    return cleaned


@functools.lru_cache(maxsize=256)
def _by_first_word(terms: tuple[str, ...]) -> dict[str, list[tuple[int, tuple[str, ...]]]]:
    """A blocklist's terms as word sequences, by first word (with their place in the list), built once per
    blocklist rather than for every prompt checked against it."""
    index: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for place, term in enumerate(terms):
        words = tokens(term)
        if words:
            index.setdefault(words[0], []).append((place, words))
    return index


def first_blocked(text: str, terms: Iterable[str]) -> str | None:
    """The first term of `terms` that occurs in `text` as a whole word or phrase, else None."""
    listed = tuple(terms)
    if not listed:
        return None
    index = _by_first_word(listed)
    words = tokens(text)
    first: int | None = None
    for at, word in enumerate(words):
        for place, needle in index.get(word, ()):
            if (first is None or place < first) and words[at : at + len(needle)] == needle:
                first = place
    return None if first is None else listed[first]


def with_term(terms: Iterable[str], term: str) -> tuple[list[str], bool]:
    """`terms` with `term` added (kept sorted); False when an equal term was already there."""
    current = list(terms)
    key = term_key(term)
    if any(term_key(t) == key for t in current):
        return current, False
    if len(current) >= MAX_TERMS:
        raise TermError("blocklist.full", limit=MAX_TERMS)
    return sorted([*current, term], key=term_key), True


def without_term(terms: Iterable[str], term: str) -> tuple[list[str], bool]:
    """`terms` without any term equal to `term`; False when there was none."""
    current = list(terms)
    key = term_key(term)
    kept = [t for t in current if term_key(t) != key]
    return kept, len(kept) != len(current)


def channel_allowed(allowed: Collection[int], channel_id: int | None, parent_id: int | None = None) -> bool:
    """Whether the bot may be used here: an empty allow-list allows every channel.

    A thread counts as its parent channel, so threads under an allowed channel are allowed too.
    """
    if not allowed:
        return True
    return channel_id in allowed or (parent_id is not None and parent_id in allowed)
