"""Shared fixtures: the loopback fakes, settings pointing at them, a database of either dialect, a running bot.

Tests that use a database (`db_target`) run on SQLite and on a real PostgreSQL server started here: every unit
test, and the end-to-end modules in PG_E2E (the ones whose paths run job and quota SQL); the other end-to-end
tests (startup, config errors, install, media layout…) do not depend on the dialect and run on SQLite only.
IMAGEBOT_TEST_DIALECTS=sqlite (or postgresql) narrows the run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.client import ImageBot
from bot.config import Settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.fakes.mindvideo import FakeMindVideo
from tests.harness import fake_discord, make_settings, running_bot
from tests.pgserver import PgServer, running_server

DIALECTS = ("sqlite", "postgresql")
PG_E2E = {"test_imagine", "test_quota", "test_buttons", "test_edit", "test_multiprocess"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_dialect" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__
    wanted = os.environ.get("IMAGEBOT_TEST_DIALECTS", ",".join(DIALECTS)).split(",")
    both = ".unit." in module or module.rsplit(".", 1)[-1] in PG_E2E
    marker = metafunc.definition.get_closest_marker("dialects")
    dialects = tuple(marker.args) if marker else DIALECTS if both else ("sqlite",)
    metafunc.parametrize("db_dialect", [d for d in dialects if d in wanted] or [dialects[0]])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with running_server() as server:
        yield server


@pytest.fixture
async def db_target(db_dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | Path:
    """Where this test's fresh database is: a SQLite file, or a new PostgreSQL database's URL."""
    if db_dialect == "sqlite":
        return tmp_path / "bot.db"
    server: PgServer = request.getfixturevalue("pg_server")
    return await server.fresh_database()


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with FakeHub() as fake:
        yield fake


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with fake_discord() as fake:
        yield fake


@pytest.fixture
def settings_for(discord_fake: FakeDiscord, hub: FakeHub, db_target: str | Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return make_settings(discord_fake, hub, db_target, **overrides)

    return build


@pytest.fixture
async def bot(settings_for: Callable[..., Settings]) -> AsyncIterator[ImageBot]:
    async with running_bot(settings_for()) as running:
        yield running


@pytest.fixture
async def mindvideo_fake() -> AsyncIterator[FakeMindVideo]:
    async with FakeMindVideo() as fake:
        yield fake


@pytest.fixture
def db_dialect() -> str:
    """Overridden by pytest_generate_tests for every test that uses a database."""
    return "sqlite"
