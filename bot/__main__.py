"""`python -m bot`: build settings, logging, database and HTTP clients; run the bot; exit cleanly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

import discord
from pydantic import ValidationError

from bot.client import ImageBot, build_providers
from bot.config import Settings, describe_settings_error
from bot.db import Database

log = logging.getLogger("bot")

EXIT_CONFIG = 2


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-8s %(name)s: %(message)s", stream=sys.stderr)
    # httpx logs every request URL at INFO; result URLs may be signed, so keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("discord").setLevel(max(logging.getLevelName(level), logging.INFO))


async def run(settings: Settings, *, force_sync: bool = False) -> int:
    """Run until Discord closes or SIGTERM/SIGINT arrives. Returns the process exit code."""
    db = await Database.open(settings.database_path)
    providers, clients = build_providers(settings)
    try:
        bot = ImageBot(settings, db, providers, force_sync=force_sync)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, lambda: asyncio.create_task(bot.close(), name="shutdown"))
        try:
            async with bot:
                await bot.start(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            print("Configuration error: Discord rejected DISCORD_TOKEN (check the bot token)", file=sys.stderr)
            return EXIT_CONFIG
        except discord.PrivilegedIntentsRequired:
            print("Configuration error: enable the intents listed in the README for this bot", file=sys.stderr)
            return EXIT_CONFIG
        return 0
    finally:
        for client in clients:
            await client.aclose()
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the image bot.")
    parser.add_argument("--sync", action="store_true", help="sync slash commands globally now")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(describe_settings_error(exc), file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    try:
        return asyncio.run(run(settings, force_sync=args.sync))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
