"""Shared fixtures: the loopback fakes, settings pointing at them, and a running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.client import ImageBot
from bot.config import Settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.fakes.mindvideo import FakeMindVideo
from tests.harness import fake_discord, make_settings, running_bot


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    async with FakeHub() as fake:
        yield fake


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with fake_discord() as fake:
        yield fake


@pytest.fixture
def settings_for(discord_fake: FakeDiscord, hub: FakeHub, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return make_settings(discord_fake, hub, tmp_path / "bot.db", **overrides)

    return build


@pytest.fixture
async def bot(settings_for: Callable[..., Settings]) -> AsyncIterator[ImageBot]:
    async with running_bot(settings_for()) as running:
        yield running


@pytest.fixture
async def mindvideo_fake() -> AsyncIterator[FakeMindVideo]:
    async with FakeMindVideo() as fake:
        yield fake
