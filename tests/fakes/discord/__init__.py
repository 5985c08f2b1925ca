"""A fake Discord on 127.0.0.1: gateway (plain ws), REST under /api/v10, and a CDN for attachments."""

from tests.fakes.discord.server import FakeDiscord, point_discord_py_at

__all__ = ["FakeDiscord", "point_discord_py_at"]
