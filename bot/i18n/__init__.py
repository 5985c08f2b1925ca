"""Message catalogues: user-facing text looked up by key and locale. Discord-free.

Catalogues are gettext `.po` files under `bot/i18n/locales/<lang>/LC_MESSAGES/`, read with Babel's `pofile`
reader when first used (no compile step, so a fresh clone and an installed package both work):

- `messages.po`: every runtime message, by key (`usage.left`), in every language, English included;
- `commands.po`: slash command descriptions and choice names, by their English source text (non-English only).

Code holds keys and parameters (`Msg`), never translated text. Plural messages (`msgid_plural`) choose their
form from the `count` parameter with the language's `Plural-Forms` rule (Chinese has one form, English two).
"""

from __future__ import annotations

import functools
import gettext
import json
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.pofile import read_po
from babel.numbers import format_decimal

DEFAULT_LOCALE = "en"
# Supported languages: our locale code -> the catalogue folder. Add a language here and under locales/.
LANGUAGES: dict[str, str] = {"en": "en", "zh-CN": "zh_CN"}
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh-CN": "简体中文"}
LOCALES_DIR = Path(__file__).parent / "locales"


def normalize(locale: object) -> str:
    """A Discord locale ("zh-CN", "en-US", a `discord.Locale`) -> a supported locale code; English otherwise."""
    code = str(getattr(locale, "value", locale) or "").replace("_", "-")
    if code in LANGUAGES:
        return code
    base = code.split("-")[0]
    return base if base in LANGUAGES else DEFAULT_LOCALE


@dataclass(frozen=True)
class Catalogue:
    """One language's messages: key -> forms (one form, or one per plural form)."""

    locale: str
    messages: Mapping[str, tuple[str, ...]]
    plural: Callable[[int], int]


def _read(locale: str, domain: str) -> Catalogue:
    path = LOCALES_DIR / LANGUAGES[locale] / "LC_MESSAGES" / f"{domain}.po"
    with path.open("rb") as file:
        catalog = read_po(file, locale=LANGUAGES[locale], domain=domain)
    messages: dict[str, tuple[str, ...]] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if all(forms):
            messages[str(key)] = tuple(str(f) for f in forms)
    return Catalogue(locale, messages, gettext.c2py(catalog.plural_expr))


@functools.cache
def catalogue(locale: str, domain: str = "messages") -> Catalogue:
    """The catalogue of a supported locale (read once)."""
    return _read(locale, domain)


def preload() -> None:
    """Read every language's messages now (at startup) rather than in the first request that needs them, which
    would wait ~30 ms per language for the catalogue to be parsed."""
    for locale in LANGUAGES:
        catalogue(locale)


def _format_value(locale: str, name: str, value: object) -> str:
    if isinstance(value, Msg):
        return value.render(locale)
    if isinstance(value, tuple | list):
        return t(locale, "list.separator").join(_format_value(locale, name, v) for v in value)
    if isinstance(value, float):
        return format_decimal(value, locale=LANGUAGES[locale])
    return str(value)  # ints as they are: ids, seeds and pixel sizes are never grouped


def t(locale: str, key: str, /, **params: object) -> str:
    """The message `key` in `locale` (falling back to English), with `params` filled in."""
    locale = normalize(locale)
    forms = catalogue(locale).messages.get(key)
    chosen = catalogue(locale) if forms is not None else catalogue(DEFAULT_LOCALE)
    forms = forms or chosen.messages.get(key)
    if forms is None:
        return key  # never in a tested build: tests/unit/test_i18n.py checks every key
    text = forms[0]
    if len(forms) > 1:
        count = params.get("count", 1)
        text = forms[min(chosen.plural(int(count) if isinstance(count, int | float) else 1), len(forms) - 1)]
    values = {name: _format_value(chosen.locale, name, value) for name, value in params.items()}
    return text.format_map(values) if values else text


@dataclass(frozen=True)
class Msg:
    """A message to render later, in whichever locale the reader has: key and parameters (which may be Msgs)."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def render(self, locale: str) -> str:
        return t(locale, self.key, **self.params)

    def encode(self) -> str:
        """As stored text (a failure reason kept on the job row until its status message shows it)."""
        return _MARK + json.dumps(_plain(self), ensure_ascii=False)


def msg(key: str, /, **params: object) -> Msg:
    return Msg(key, params)


_MARK = "msg:"


def _plain(value: object) -> object:
    if isinstance(value, Msg):
        return {"$key": value.key, **{k: _plain(v) for k, v in value.params.items()}}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value if isinstance(value, int | float | str | None) else str(value)


def _revive(value: object) -> object:
    if isinstance(value, dict) and "$key" in value:
        return Msg(str(value["$key"]), {str(k): _revive(v) for k, v in value.items() if k != "$key"})
    if isinstance(value, list):
        return tuple(_revive(v) for v in value)
    return value


def decode(text: str) -> Msg | str:
    """`Msg.encode`'s text back to a Msg; any other text (older rows, provider words) is returned as it is."""
    if text.startswith(_MARK):
        try:
            value = _revive(json.loads(text[len(_MARK) :]))
        except ValueError:
            return text
        if isinstance(value, Msg):
            return value
    return text


def render(value: Msg | str, locale: str) -> str:
    """A stored reason (encoded Msg or plain text) in `locale`."""
    value = decode(value) if isinstance(value, str) else value
    return value.render(locale) if isinstance(value, Msg) else value


def placeholders(text: str) -> set[str]:
    """The `{names}` a message uses."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
