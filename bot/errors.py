"""Errors whose text is safe to show a Discord user. Everything else is logged, never shown.

They carry a catalogue key and parameters (see bot/i18n), not text: the central error path (bot/tree.py)
renders them in the member's language, so the Discord-free core never needs to know who reads them.
"""

from __future__ import annotations

from bot.i18n import DEFAULT_LOCALE, Msg


class UserFacingError(Exception):
    """An error the user caused or can act on; shown to them in their language."""

    def __init__(self, key: str | Msg, /, **params: object) -> None:
        self.msg = key if isinstance(key, Msg) else Msg(key, params)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The English text (logs, and callers that have no locale)."""
        return self.msg.render(DEFAULT_LOCALE)

    def render(self, locale: str) -> str:
        return self.msg.render(locale)


class InvalidRequest(UserFacingError):
    """The request itself is wrong: empty prompt, unknown model, unsupported option, bad value."""


class MissingPermissions(UserFacingError):
    """The bot lacks a Discord permission it needs in this channel."""


class ServiceUnavailable(UserFacingError):
    """A dependency of the bot (database, provider) cannot take the request right now."""


class ChannelNotAllowed(UserFacingError):
    """The server keeps the bot to other channels; the message names them."""


class BlockedPrompt(UserFacingError):
    """A prompt or edit instruction holds a term the server blocks; the message never repeats the term."""
