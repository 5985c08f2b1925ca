"""The catalogues: every key the code uses exists in every language, none is unused, placeholders agree, and
every string of the slash commands has its Chinese."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.client import EXTENSIONS
from bot.errors import InvalidRequest
from bot.i18n import DEFAULT_LOCALE, LANGUAGES, catalogue, decode, msg, normalize, placeholders, render, t
from bot.rendering.text import format_seconds

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"^[a-z][a-z_]*\.[a-z0-9_.]+$")
OTHERS = [locale for locale in LANGUAGES if locale != DEFAULT_LOCALE]


def keys_in_code() -> dict[str, str]:
    """String constants in bot/ and cogs/ that look like catalogue keys (`group.name` of a catalogue group)."""
    groups = {key.split(".")[0] for key in catalogue(DEFAULT_LOCALE).messages}
    found: dict[str, str] = {}
    for path in sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and KEY.match(value) and value.split(".")[0] in groups:
                found.setdefault(value, str(path.relative_to(ROOT)))
    return found


Messages = Mapping[str, tuple[str, ...]]


def missing(used: Iterable[str], messages: Messages) -> list[str]:
    return sorted(key for key in used if key not in messages)


def unused(used: Iterable[str], messages: Messages) -> list[str]:
    return sorted(set(messages) - set(used))


def mismatched(english: Messages, other: Messages) -> list[str]:
    """Keys whose translation uses other `{placeholders}` than the English (in any plural form)."""
    wanted = {key: set().union(*(placeholders(f) for f in forms)) for key, forms in english.items()}
    return sorted(key for key, forms in other.items() if any(placeholders(f) != wanted.get(key) for f in forms))


def test_the_checks_catch_missing_unused_and_mismatched_keys() -> None:
    english = {"usage.left": ("{count} credit left", "{count} credits left"), "old.key": ("Old",)}
    chinese = {"usage.left": ("还剩 {left} 积分",)}
    assert missing(["usage.left", "new.key"], chinese) == ["new.key"]
    assert unused(["usage.left"], english) == ["old.key"]
    assert mismatched(english, chinese) == ["usage.left"]


def test_every_key_the_code_uses_exists_in_every_language() -> None:
    used = keys_in_code()
    assert len(used) > 200
    for locale in LANGUAGES:
        assert missing(used, catalogue(locale).messages) == [], f"{locale} lacks these keys"


def test_no_catalogue_key_is_unused() -> None:
    used = keys_in_code()
    for locale in LANGUAGES:
        assert unused(used, catalogue(locale).messages) == [], f"{locale} has keys no code uses"


@pytest.mark.parametrize("locale", OTHERS)
def test_placeholders_agree_with_english(locale: str) -> None:
    assert mismatched(catalogue(DEFAULT_LOCALE).messages, catalogue(locale).messages) == []
    assert set(catalogue(locale).messages) == set(catalogue(DEFAULT_LOCALE).messages)


def test_plural_messages_have_every_form_of_their_language() -> None:
    english = catalogue(DEFAULT_LOCALE)
    plural = {key for key, forms in english.messages.items() if len(forms) > 1}
    assert "credits.count" in plural
    assert all(len(english.messages[key]) == 2 for key in plural)
    assert all(len(catalogue("zh-CN").messages[key]) == 1 for key in plural)  # Chinese has one form
    assert t("en", "credits.count", count=1) == "1 credit"
    assert t("en", "credits.count", count=2) == "2 credits"
    assert t("zh-CN", "credits.count", count=1) == "1 积分"


def test_durations_read_naturally() -> None:
    assert (format_seconds(65), format_seconds(9)) == ("1m 5s", "9s")
    assert (format_seconds(65, "zh-CN"), format_seconds(9, "zh-CN")) == ("1分5秒", "9秒")


def test_locales_fall_back_to_english() -> None:
    assert normalize("zh-CN") == normalize(discord.Locale.chinese) == "zh-CN"
    assert normalize("en-GB") == normalize("ja") == normalize(None) == "en"
    assert t("ja", "field.model") == "Model"
    assert t("zh-CN", "field.model") == "模型"


def test_errors_carry_keys_and_render_in_any_language() -> None:
    error = InvalidRequest("request.range", option="seed", low=0, high=9)
    assert str(error) == error.message == "`seed` must be a whole number from 0 to 9."
    assert error.render("zh-CN") == "`seed` 必须是 0 到 9 之间的整数。"


def test_stored_reasons_round_trip_and_provider_words_stay_as_written() -> None:
    stored = msg("fail.provider_said", detail="Content blocked by policy").encode()
    assert render(stored, "zh-CN") == "图片服务无法生成这张图片：Content blocked by policy"
    assert render("plain text from an older row", "zh-CN") == "plain text from an older row"
    assert decode("msg:{broken") == "msg:{broken"


class Recorder(app_commands.Translator):
    """Every string the tree asks to translate, and what our catalogue gives for zh-CN."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        named = context.location in (
            app_commands.TranslationContextLocation.command_name,
            app_commands.TranslationContextLocation.group_name,
            app_commands.TranslationContextLocation.parameter_name,
        )
        if locale is discord.Locale.chinese and not (named and not isinstance(context.data, app_commands.ContextMenu)):
            self.asked.add(string.message)
        return None


async def test_commands_po_holds_exactly_the_strings_of_the_commands() -> None:
    bot = commands.Bot(command_prefix=[], intents=discord.Intents.none())
    bot.db = None  # type: ignore[attr-defined]  # the cogs only keep it
    for extension in EXTENSIONS:
        module = __import__(extension, fromlist=["setup"])
        await module.setup(bot)
    recorder = Recorder()
    for command in [*bot.tree.get_commands(), *bot.tree.get_commands(type=discord.AppCommandType.message)]:
        await command.get_translated_payload(bot.tree, recorder)
    translated = catalogue("zh-CN", "commands").messages
    assert sorted(recorder.asked - set(translated)) == [], "strings without Chinese"
    assert sorted(set(translated) - recorder.asked) == [], "unused entries in commands.po"
    assert all(len(forms[0]) <= 100 for forms in translated.values())  # Discord's limit
