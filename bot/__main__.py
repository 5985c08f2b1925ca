"""`python -m bot` / `imagebot`: build settings, logging, database and HTTP clients; run the bot; exit cleanly.

Every configuration problem ends the process with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sqlite3
import sys

import discord
from pydantic import ValidationError

from bot import __version__
from bot.client import build_catalogue, build_providers, make_bot
from bot.config import Settings, describe_settings_error
from bot.db import Database
from bot.db.upgrade import SchemaTooNew
from bot.ops.logs import configure_logging
from bot.ops.metrics import Metrics
from bot.ops.startup import ConfigurationError, check_api_keys, reach_discord

log = logging.getLogger("bot")

EXIT_CONFIG = 2


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value, for the log redaction filter."""
    keys = (settings.discord_token, settings.mountsea_api_key, settings.mindvideo_api_key, settings.database_url)
    return [key.get_secret_value() for key in keys if key is not None]


def config_error(line: str) -> int:
    print(line, file=sys.stderr)
    return EXIT_CONFIG


async def open_database(settings: Settings) -> Database | str:
    """The migrated database, or the configuration error line."""
    path = settings.database_path
    name = f"DATABASE_PATH {path}" if settings.database_url is None else "DATABASE_URL"
    try:
        return await Database.open(settings.database_target)
    except SchemaTooNew as exc:
        return f"Configuration error: {name}: {exc}; run a newer version of the bot"
    except (OSError, sqlite3.Error) as exc:
        return f"Configuration error: {name} cannot be used ({exc})"
    except Exception as exc:  # asyncpg's errors: wrong password, unknown database, server down
        if settings.database_url is None:
            raise
        return f"Configuration error: DATABASE_URL cannot be used ({type(exc).__name__}: {exc})"


async def run(settings: Settings, *, force_sync: bool = False) -> int:
    """Run until Discord closes or SIGTERM/SIGINT arrives. Returns the process exit code."""
    db = await open_database(settings)
    if isinstance(db, str):
        return config_error(db)
    metrics = Metrics()
    providers, clients = build_providers(settings, metrics=metrics)
    try:
        catalogue = build_catalogue(settings, providers)
        problem = await check_api_keys(providers, catalogue) or await reach_discord()
        if problem is not None:
            return config_error(problem)
        bot = make_bot(settings, db, providers, force_sync=force_sync, metrics=metrics, catalogue=catalogue)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, lambda: asyncio.create_task(bot.close(), name="shutdown"))
        try:
            async with bot:
                await bot.start(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            return config_error("Configuration error: Discord rejected DISCORD_TOKEN (check the bot token)")
        except discord.PrivilegedIntentsRequired:
            return config_error("Configuration error: enable the intents listed in the README for this bot")
        except ConfigurationError as exc:
            return config_error(str(exc))
        return 0
    finally:
        for client in clients:
            await client.aclose()
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagebot", description="Run the image bot.")
    parser.add_argument("--version", action="version", version=f"imagebot {__version__}")
    parser.add_argument("--sync", action="store_true", help="sync slash commands globally now")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        return config_error(describe_settings_error(exc))
    configure_logging(settings.log_level, settings.log_format, secrets_of(settings))
    try:
        return asyncio.run(run(settings, force_sync=args.sync))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
