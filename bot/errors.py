"""Errors whose text is safe to show a Discord user. Everything else is logged, never shown."""

from __future__ import annotations


class UserFacingError(Exception):
    """An error the user caused or can act on; its message is shown to them as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
