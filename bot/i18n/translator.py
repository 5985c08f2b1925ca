"""Discord glue for the catalogues: the command Translator, and which language an interaction reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import DEFAULT_LOCALE, LANGUAGES, Msg, catalogue, msg, normalize

if TYPE_CHECKING:
    from bot.client import ImageBot


class CatalogueTranslator(app_commands.Translator):
    """Localises command descriptions, choice names and the context menu's name from `commands.po`.

    Command and option names stay English (what members type); a string without a translation is left out
    of the payload, so Discord shows the English one.
    """

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        code = str(locale.value)
        if code not in LANGUAGES or code == DEFAULT_LOCALE:
            return None
        if context.location in (
            app_commands.TranslationContextLocation.command_name,
            app_commands.TranslationContextLocation.group_name,
            app_commands.TranslationContextLocation.parameter_name,
        ) and not isinstance(context.data, app_commands.ContextMenu):
            return None  # slash command and option names stay what members type
        forms = catalogue(code, "commands").messages.get(string.message)
        return forms[0] if forms else None


def user_locale(interaction: discord.Interaction[ImageBot]) -> str:
    """The language of the member who interacted (Discord sends their client's language)."""
    return normalize(interaction.locale)


PERMISSION_KEYS = {
    "manage_guild": "permission.manage_guild",
    "manage_messages": "permission.manage_messages",
    "view_channel": "permission.view_channel",
    "send_messages": "permission.send_messages",
    "send_messages_in_threads": "permission.send_messages_in_threads",
    "embed_links": "permission.embed_links",
    "attach_files": "permission.attach_files",
    "read_message_history": "permission.read_message_history",
}


def permission_names(names: list[str]) -> tuple[Msg | str, ...]:
    """Discord permissions as Discord's settings name them (a tuple renders as a list in the reader's language)."""
    return tuple(msg(PERMISSION_KEYS[n]) if n in PERMISSION_KEYS else n.replace("_", " ").title() for n in names)
