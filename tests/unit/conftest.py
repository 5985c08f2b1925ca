"""Fixtures for the Discord-free core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.hub import FakeHub
from tests.unit.world import World, build_world


@pytest.fixture
async def world(hub: FakeHub, db_target: str | Path) -> AsyncIterator[World]:
    async for built in build_world(hub, db_target):
        yield built
