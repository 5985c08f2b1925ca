"""Operations against the running bot on the fake Discord: /healthz, /metrics, the startup log lines,
a MindVideo-only deployment, and the Hub's live model list."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Callable

import httpx
import pytest

from bot.config import Settings
from bot.ops import healthcheck
from bot.ops.logs import configure_logging
from bot.ops.metrics import CONTENT_TYPE
from tests.e2e.test_imagine import ephemeral_reply, has_files
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub, Fault
from tests.fakes.mindvideo import FakeMindVideo
from tests.harness import running_bot


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus exposition text."""
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        metric, _, raw_labels = key.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', raw_labels))
        if metric == name and found == labels:
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


async def test_healthz_answers_while_connected_and_503_when_the_database_is_stuck(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord
) -> None:
    async with running_bot(settings_for(http_port=0)) as bot, httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{bot.ops.port}/healthz"
        ok = await http.get(url)
        assert ok.status_code == 200
        assert ok.json() == {"status": "ok", "gateway": True, "database": True, "guilds": 1}
        assert await asyncio.to_thread(healthcheck.check, bot.ops.port)  # what Docker's HEALTHCHECK runs
        async with bot.db.transaction():  # a write that never ends: the database stops answering
            stuck = await http.get(url, timeout=10)
        assert stuck.status_code == 503 and stuck.json()["database"] is False
        assert (await http.get(url)).status_code == 200


async def test_healthz_is_503_while_the_gateway_is_down(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord
) -> None:
    async with running_bot(settings_for(http_port=0)) as bot, httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{bot.ops.port}/healthz"
        discord_fake.gateway_refusing = True
        for ws, _ in list(discord_fake._sockets):
            await ws.close(code=4000)  # discord.py tries to reconnect and is refused
        async with asyncio.timeout(10):
            while (down := await http.get(url)).status_code != 503:
                await asyncio.sleep(0.05)
        assert down.json()["gateway"] is False and down.json()["database"] is True
        discord_fake.gateway_refusing = False
        async with asyncio.timeout(30):
            while (await http.get(url)).status_code != 200:
                await asyncio.sleep(0.1)


async def test_metrics_count_jobs_and_provider_calls(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    hub.plan_next(duration=30)  # stays at the image service while we scrape
    async with running_bot(settings_for(http_port=0)) as bot, httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{bot.ops.port}/metrics"
        await discord_fake.slash("imagine", {"prompt": "a slow fox"})
        await discord_fake.wait_for_message(
            lambda m: "Generating" in str(m["embeds"]), kinds=("message_create", "message_update")
        )
        running = await http.get(url)
        bot.metrics.job_ended("succeeded")  # what the job runner reports (see bot/ops/metrics.py)
        bot.metrics.result_posted(0.4)
        bot.metrics.credits_charged(2)
        after = (await http.get(url)).text
    assert running.headers["Content-Type"] == CONTENT_TYPE
    assert sample(running.text, "imagebot_jobs_active") == 1 and sample(running.text, "imagebot_jobs_queued") == 0
    assert sample(running.text, "imagebot_provider_requests_total", outcome="ok", provider="hub") >= 2
    assert sample(after, "imagebot_jobs_total", state="succeeded") == 1
    assert sample(after, "imagebot_jobs_total", state="failed") == 0
    assert sample(after, "imagebot_job_added_latency_seconds_count") == 1
    assert sample(after, "imagebot_job_added_latency_seconds_bucket", le="0.5") == 1
    assert sample(after, "imagebot_credits_charged_total") == 2


async def test_startup_logs_who_and_where_and_the_invite_link(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    async with running_bot(settings_for()) as bot:
        assert bot.user is not None and bot.application_id is not None
        expected = f"logged in as {bot.user} ({bot.user.id}), in 1 servers"
        invite = (
            f"https://discord.com/oauth2/authorize?client_id={bot.application_id}"
            "&scope=bot+applications.commands&permissions=274878024704"
        )
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count(expected) == 1
    assert f"invite: {invite}" in messages


async def test_json_logs_of_a_real_job_carry_its_context(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("DEBUG", "json", [FakeDiscord.TOKEN, hub.api_key], stream=out)
    try:
        async with running_bot(settings_for()):
            await discord_fake.slash("imagine", {"prompt": "a fox"})
            await discord_fake.wait_for_message(has_files)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    driving = [e for e in entries if e["logger"].startswith("bot.jobs.") and e["message"].startswith("job 1: ")]
    driving = [e for e in driving if e["logger"] != "bot.jobs.service"]  # created in the command's own task
    assert len(driving) >= 3 and all(e["job_id"] == 1 for e in driving)
    assert any(e["message"].startswith("job 1: task succeeded after ") for e in driving)
    assert FakeDiscord.TOKEN not in out.getvalue() and hub.api_key not in out.getvalue()


async def test_a_mindvideo_key_alone_is_enough(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub, mindvideo_fake: FakeMindVideo
) -> None:
    settings = settings_for(
        mountsea_api_key=None, mindvideo_api_key=mindvideo_fake.api_key, mindvideo_base_url=mindvideo_fake.url
    )
    async with running_bot(settings) as bot:
        assert set(bot.providers) == {"mindvideo"}
        await discord_fake.slash("imagine", {"prompt": "a fox"})
        result = await discord_fake.wait_for_message(has_files)
        listing = await ephemeral_reply(discord_fake, await discord_fake.slash("models"))
    assert len(result["attachments"]) == 1 and len(mindvideo_fake.submissions) == 1
    assert hub.submit_calls == 0 and hub.models_calls == 0
    assert "MindVideo" in listing and "MountSea" not in listing


async def test_models_the_hub_no_longer_lists_are_refused_and_hidden(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    hub.listed_models -= {"nano-banana-pro", "nano-banana-pro-edit"}
    async with running_bot(settings_for()):
        answer = await ephemeral_reply(
            discord_fake, await discord_fake.slash("imagine", {"prompt": "a fox", "model": "nano-banana-pro"})
        )
        listing = await ephemeral_reply(discord_fake, await discord_fake.slash("models"))
    assert "Nano Banana Pro is no longer offered by the image service" in answer
    assert "Nano Banana Pro" not in listing and "Nano Banana 2" in listing
    assert hub.submit_calls == 0 and hub.models_calls == 1


async def test_the_bundled_catalogue_applies_when_the_model_list_fails(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    hub.models_faults.extend([Fault(status=500), Fault(status=500)])
    hub.listed_models.clear()
    async with running_bot(settings_for()) as bot:
        assert not bot.catalogue.live
        listing = await ephemeral_reply(discord_fake, await discord_fake.slash("models"))
        await discord_fake.slash("imagine", {"prompt": "a fox", "model": "nano-banana-pro"})
        await discord_fake.wait_for_message(has_files)
    assert "Nano Banana Pro" in listing and hub.submissions[0]["model"] == "nano-banana-pro"
