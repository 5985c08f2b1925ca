"""Blocklist matching and the channel allow-list decision (Discord-free)."""

from __future__ import annotations

import pytest

from bot.moderation import (
    MAX_TERMS,
    channel_allowed,
    clean_term,
    first_blocked,
    term_key,
    tokens,
    with_term,
    without_term,
)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("please kill the lights", "kill"),
        ("KILL", "kill"),
        ("Kill!", "kill"),
        ("(kill)", "kill"),
        ("a kíll here", "kill"),  # accents on Latin letters don't hide a term
        ("ＫＩＬＬ", "kill"),  # full-width letters
        ("ki\u200bll", "kill"),  # a zero-width space inside the word
        ("k\u0338ill", "kill"),  # a stray combining mark
        ("blood   bath", "blood bath"),  # repeated spaces
        ("blood\nbath", "blood bath"),
        ("blood-bath", "blood bath"),  # punctuation between the words of a phrase
        ("BLOOD,   Bath", "blood  bath"),
        ("STRASSE", "straße"),  # case folding, not just lower()
        ("我想杀人", "杀人"),  # scripts without spaces match by characters
        ("нож в руке", "НОЖ"),
        ("x 42 y", "42"),
    ],
)
def test_terms_match_whole_words_and_phrases(text: str, term: str) -> None:
    assert first_blocked(text, [term]) == term


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("a skill tree", "kill"),  # never inside another word
        ("killer whale", "kill"),
        ("skillful", "kill"),
        ("blood and bath", "blood bath"),  # a phrase is words in a row
        ("bath blood", "blood bath"),
        ("kills", "kill"),  # whole words: plurals are their own term
        ("x 420 y", "42"),
        ("", "kill"),
    ],
)
def test_terms_do_not_match_inside_words(text: str, term: str) -> None:
    assert first_blocked(text, [term]) is None


def test_marks_of_uncased_scripts_are_kept() -> None:
    assert tokens("नमस्ते दुनिया") == ("नमस्ते", "दुनिया")  # Devanagari vowel signs are part of the word
    assert first_blocked("か", ["が"]) is None  # dakuten changes the kana


def test_first_of_several_terms_is_reported() -> None:
    assert first_blocked("a cat and a dog", ["horse", "dog", "cat"]) == "dog"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Kill_All the-Things!", ("kill", "all", "the", "things")),  # "_" and "-" separate words
        ("don't\tstop\x00now", ("don", "t", "stop", "now")),  # so do tabs and control characters
        ("R2D2 vs C3PO, 1984", ("r2d2", "vs", "c3po", "1984")),
        ("  ", ()),
        ("MiXeD cAsE", ("mixed", "case")),
    ],
)
def test_plain_ascii_text_splits_into_the_same_words_as_any_text(text: str, words: tuple[str, ...]) -> None:
    assert tokens(text) == words
    # The same text with one non-ASCII character beside it tokenizes the same way up to that character.
    assert tokens(text + " é") == (*words, "e")


def test_a_full_blocklist_reports_the_first_listed_term_that_occurs() -> None:
    terms = [f"term{i}" for i in range(190)] + ["red fox", "red", "blue whale", "whale", "fox den"]
    assert first_blocked("a red fox naps", terms) == "red fox"  # listed before "red"
    assert first_blocked("a red sky", terms) == "red"
    assert first_blocked("a whale, then a blue whale", terms) == "blue whale"
    assert first_blocked("the fox den of a red fox", terms) == "red fox"
    assert first_blocked("a blue sky over the fox", terms) is None
    assert first_blocked("TERM189 and term7", terms) == "term7"
    assert first_blocked("a red fox", ()) is None


def test_clean_term_trims_and_refuses_empty_or_long_terms() -> None:
    assert clean_term("  blood \t  bath ") == "blood bath"
    with pytest.raises(ValueError, match="letter or digit"):
        clean_term(" !!! ")
    with pytest.raises(ValueError, match="at most"):
        clean_term("x" * 101)


def test_adding_and_removing_terms_compares_normalised() -> None:
    terms, added = with_term([], "Kill")
    assert added and terms == ["Kill"]
    terms, added = with_term(terms, "KÍLL")
    assert not added and terms == ["Kill"]
    terms, added = with_term(terms, "blood bath")
    assert added and terms == ["blood bath", "Kill"]
    terms, removed = without_term(terms, "blood   BATH")
    assert removed and terms == ["Kill"]
    assert without_term(terms, "nope") == (["Kill"], False)
    assert term_key("Blood-Bath") == "blood bath"


def test_the_blocklist_has_a_size_limit() -> None:
    full = [f"term{i}" for i in range(MAX_TERMS)]
    with pytest.raises(ValueError, match="full"):
        with_term(full, "one more")


def test_an_empty_allow_list_allows_every_channel() -> None:
    assert channel_allowed((), 1)
    assert channel_allowed((), None)


def test_the_allow_list_names_channels_and_their_threads() -> None:
    assert channel_allowed((1, 2), 2)
    assert not channel_allowed((1, 2), 3)
    assert channel_allowed((1, 2), 30, parent_id=1)  # a thread in an allowed channel
    assert not channel_allowed((1, 2), 30, parent_id=3)
    assert not channel_allowed((1,), None)
