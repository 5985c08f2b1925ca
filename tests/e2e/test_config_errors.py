"""The real entry point in its own process: each configuration problem is one line on stderr and exit code 2,
and a good configuration serves /healthz and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest

from bot.db.migrations import MIGRATIONS
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.fakes.mindvideo import FakeMindVideo

ROOT = Path(__file__).resolve().parents[2]
SETTING_PREFIXES = ("DISCORD_", "MOUNTSEA_", "MINDVIDEO_", "DEV_GUILD", "QUOTA_", "PROVIDER_", "DATABASE_", "HTTP_")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_bot(cwd: Path, **env: str) -> tuple[int, list[str]]:
    """Run the bot's entry point in `cwd` (its .env is read from there); returns the exit code and stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    base = {
        "PYTHONPATH": str(ROOT),
        "TEST_DISCORD_URL": f"http://127.0.0.1:{closed_port()}",
        "DISCORD_TOKEN": "token-for-tests",
        "MOUNTSEA_API_KEY": "key-for-tests",
        "MOUNTSEA_BASE_URL": f"http://127.0.0.1:{closed_port()}",
        "DATABASE_PATH": str(cwd / "bot.db"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.launch",
        cwd=cwd,
        env={**clean, **base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, err.decode().strip().splitlines()


def only_line(lines: list[str]) -> str:
    """Settings errors come before logging starts: stderr is that one line."""
    assert len(lines) == 1, lines
    assert lines[0].startswith("Configuration error: ")
    return lines[0]


def last_line(lines: list[str]) -> str:
    """Errors found once the bot is starting: log lines may come first, then exactly one error line."""
    assert not any("Traceback" in line for line in lines), lines
    assert sum(line.startswith("Configuration error: ") for line in lines) == 1, lines
    assert lines[-1].startswith("Configuration error: "), lines
    return lines[-1]


@pytest.mark.parametrize("name", ["QUOTA_COSTS", "PROVIDER_ORDER"])
async def test_bad_json_is_one_line(tmp_path: Path, name: str) -> None:
    code, err = await run_bot(tmp_path, **{name: '{"nano-banana": 2,'})
    assert code == 2
    assert only_line(err).startswith(f"Configuration error: {name} is not valid JSON (")


async def test_an_unusable_database_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    code, err = await run_bot(tmp_path, DATABASE_PATH=str(tmp_path / "file" / "bot.db"))
    assert code == 2 and "DATABASE_PATH" in only_line(err) and "cannot be used" in err[0]


async def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bot.db").write_bytes(b"this is not sqlite" * 100)
    code, err = await run_bot(tmp_path)
    assert code == 2 and "DATABASE_PATH" in only_line(err)


async def test_a_newer_database_schema_is_one_line(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    code, err = await run_bot(tmp_path)
    assert code == 2
    assert f"schema v{len(MIGRATIONS) + 1} is newer than this bot" in only_line(err)


async def test_the_env_example_placeholders_are_refused(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    clean = {"DISCORD_TOKEN": "", "MOUNTSEA_API_KEY": ""}  # empty: the .env file is what counts
    code, err = await run_bot(tmp_path, **clean)
    line = only_line(err)
    assert code == 2 and "DISCORD_TOKEN still holds the .env.example placeholder" in line
    assert "MOUNTSEA_API_KEY still holds the .env.example placeholder" in line


async def test_no_image_service_key_is_one_line(tmp_path: Path) -> None:
    code, err = await run_bot(tmp_path, MOUNTSEA_API_KEY="")
    assert code == 2
    assert "MINDVIDEO_API_KEY or MOUNTSEA_API_KEY must be set (at least one image service)" in only_line(err)


async def test_unreachable_discord_is_one_line_after_retries(tmp_path: Path) -> None:
    # The image service is unreachable too: that is only a warning, and the bot goes on to Discord.
    code, err = await run_bot(tmp_path)
    assert code == 2
    assert last_line(err).startswith("Configuration error: cannot reach Discord after 3 attempts")
    assert any("could not read the Hub's model list" in line for line in err)


async def test_a_refused_hub_key_is_reported_at_startup(tmp_path: Path, hub: FakeHub) -> None:
    code, err = await run_bot(tmp_path, MOUNTSEA_BASE_URL=hub.url, MOUNTSEA_API_KEY="wrong-key-123")
    assert code == 2 and hub.models_calls == 1 and hub.submit_calls == 0
    assert (
        last_line(err)
        == "Configuration error: MountSea refused MOUNTSEA_API_KEY (HTTP 401 from /hub/v1/models); check the key"
    )


async def test_a_refused_mindvideo_key_is_reported_at_startup(tmp_path: Path, mindvideo_fake: FakeMindVideo) -> None:
    code, err = await run_bot(
        tmp_path, MOUNTSEA_API_KEY="", MINDVIDEO_API_KEY="wrong-key-123", MINDVIDEO_BASE_URL=mindvideo_fake.url
    )
    assert code == 2 and "MindVideo refused MINDVIDEO_API_KEY" in last_line(err)


async def start_bot(cwd: Path, discord_url: str, **env: str) -> asyncio.subprocess.Process:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    base = {"PYTHONPATH": str(ROOT), "TEST_DISCORD_URL": discord_url, "DATABASE_PATH": str(cwd / "bot.db")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.launch",
        cwd=cwd,
        env={**clean, **base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_the_installed_entry_point_serves_health_and_stops_cleanly(
    tmp_path: Path, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    port = closed_port()
    process = await start_bot(
        tmp_path,
        discord_fake.url,
        DISCORD_TOKEN=FakeDiscord.TOKEN,
        MOUNTSEA_API_KEY=hub.api_key,
        MOUNTSEA_BASE_URL=hub.url,
        HTTP_PORT=str(port),
        LOG_FORMAT="json",
    )
    try:
        async with httpx.AsyncClient() as http, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    health = await http.get(f"http://127.0.0.1:{port}/healthz")
                    if health.status_code == 200:
                        break
                await asyncio.sleep(0.1)
            metrics = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert 'imagebot_provider_requests_total{outcome="ok",provider="hub"} 1.0' in metrics.text  # the key check
    entries = [json.loads(line) for line in err.decode().splitlines()]
    assert any(e["message"].startswith("logged in as ") for e in entries)
    assert FakeDiscord.TOKEN not in err.decode() and hub.api_key not in err.decode()


async def test_a_port_in_use_is_one_line(tmp_path: Path, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await start_bot(
            tmp_path,
            discord_fake.url,
            DISCORD_TOKEN=FakeDiscord.TOKEN,
            MOUNTSEA_API_KEY=hub.api_key,
            MOUNTSEA_BASE_URL=hub.url,
            HTTP_PORT=str(port),
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert last_line(err.decode().splitlines()).startswith(
        f"Configuration error: HTTP_PORT cannot listen on 127.0.0.1:{port}"
    )
