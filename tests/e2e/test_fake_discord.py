"""The fake Discord refuses what Discord refuses, as seen by the real discord.py client."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord import FakeDiscord


class Probe(discord.Client):
    """A bare discord.py client with one command whose behaviour each test chooses."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.behaviour: object = None
        self.outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        @self.tree.command(name="probe", description="test")
        async def probe(interaction: discord.Interaction) -> None:
            try:
                result = await self.behaviour(interaction)  # type: ignore[operator]
            except Exception as exc:
                result = exc
            if not self.outcome.done():
                self.outcome.set_result(result)

        @self.tree.command(name="probefile", description="test")
        async def probefile(interaction: discord.Interaction, file: discord.Attachment) -> None:
            await self.behaviour(interaction, file)  # type: ignore[operator]

        @self.tree.context_menu(name="Probe message")
        async def probe_message(interaction: discord.Interaction, message: discord.Message) -> None:
            await self.behaviour(interaction, message)  # type: ignore[operator]

        self.seen: list[discord.Message] = []

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)

    async def setup_hook(self) -> None:
        await self.tree.sync()


@pytest.fixture
async def probe(discord_fake: FakeDiscord) -> AsyncIterator[Probe]:
    client = Probe()
    task = asyncio.create_task(client.start(FakeDiscord.TOKEN))
    await asyncio.wait_for(client.wait_until_ready(), 10)
    yield client
    await client.close()
    await asyncio.gather(task, return_exceptions=True)


async def run_probe(discord_fake: FakeDiscord, probe: Probe, behaviour: object, **kwargs: object) -> object:
    probe.behaviour = behaviour
    await discord_fake.slash("probe", **kwargs)  # type: ignore[arg-type]
    return await asyncio.wait_for(probe.outcome, 10)


async def test_acknowledging_after_three_seconds_is_unknown_interaction(
    discord_fake: FakeDiscord, probe: Probe
) -> None:
    async def ack(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("hi")

    error = await run_probe(discord_fake, probe, ack, sent_at=time.time() - 4)
    assert isinstance(error, discord.NotFound) and error.code == 10062


async def test_acknowledging_twice_is_refused(discord_fake: FakeDiscord, probe: Probe) -> None:
    async def twice(interaction: discord.Interaction) -> object:
        await interaction.response.defer()
        url = f"{discord_fake.url}/api/v10/interactions/{interaction.id}/{interaction.token}/callback"
        async with aiohttp.ClientSession() as session, session.post(url, json={"type": 5}) as response:
            return response.status, (await response.json())["code"]

    assert await run_probe(discord_fake, probe, twice) == (400, 40060)


async def test_tokens_die_after_fifteen_minutes(discord_fake: FakeDiscord, probe: Probe) -> None:
    discord_fake.ack_deadline = 10_000  # let the old interaction be acknowledged, to reach the webhook

    async def late_followup(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.followup.send("too late")
        await interaction.followup.send("still too late")

    error = await run_probe(discord_fake, probe, late_followup, sent_at=time.time() - 16 * 60)
    assert isinstance(error, discord.HTTPException) and error.code == 50027


async def test_files_over_the_upload_limit_are_refused(discord_fake: FakeDiscord, probe: Probe) -> None:
    channel = probe.get_partial_messageable(discord_fake.channel_id)
    with pytest.raises(discord.HTTPException) as info:
        await channel.send(file=discord.File(io.BytesIO(b"x" * (discord_fake.upload_limit + 1)), "big.png"))
    assert info.value.status == 413 and info.value.code == 40005
    ok = await channel.send(file=discord.File(io.BytesIO(b"x" * discord_fake.upload_limit), "fits.png"))
    assert ok.attachments[0].size == discord_fake.upload_limit


async def test_more_than_ten_files_are_refused(discord_fake: FakeDiscord, probe: Probe) -> None:
    channel = probe.get_partial_messageable(discord_fake.channel_id)
    files = [discord.File(io.BytesIO(b"x"), f"{i}.png") for i in range(11)]
    with pytest.raises(discord.HTTPException) as info:
        await channel.send(files=files)
    assert info.value.status == 400


async def test_enforced_nonce_returns_the_first_message(discord_fake: FakeDiscord, probe: Probe) -> None:
    channel = probe.get_partial_messageable(discord_fake.channel_id)
    first = await channel.send("once", nonce="job-1-result")
    again = await channel.send("once", nonce="job-1-result")
    assert first.id == again.id and len(discord_fake.channel_messages()) == 1


async def test_rate_limits_carry_retry_after_and_via(discord_fake: FakeDiscord, probe: Probe) -> None:
    discord_fake.rate_limit("POST", r"/channels/\d+/messages$", count=1, retry_after=0.2)
    started = time.monotonic()
    message = await probe.get_partial_messageable(discord_fake.channel_id).send("after a 429")
    assert time.monotonic() - started >= 0.2 and message.content == "after a 429"


async def test_cdn_serves_uploaded_attachments(discord_fake: FakeDiscord, probe: Probe) -> None:
    message = await probe.get_partial_messageable(discord_fake.channel_id).send(
        file=discord.File(io.BytesIO(b"payload"), "a.png")
    )
    assert await message.attachments[0].read() == b"payload"


async def test_gateway_resume_after_a_dropped_connection(discord_fake: FakeDiscord, probe: Probe) -> None:
    ws = probe.ws
    assert ws is not None
    await ws.close(code=4000)  # discord.py reconnects and resumes on a non-final close
    async with asyncio.timeout(10):
        while discord_fake.resumes + discord_fake.identifies < 2:
            await asyncio.sleep(0.02)

    async def ack(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("still here")

    assert await run_probe(discord_fake, probe, ack) is None


async def test_slash_attachments_are_uploaded_and_resolved(discord_fake: FakeDiscord, probe: Probe) -> None:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def read(interaction: discord.Interaction, file: discord.Attachment) -> None:
        await interaction.response.defer()
        got.set_result(await file.read())

    probe.behaviour = read
    await discord_fake.slash("probefile", {"file": ("cat.png", b"png-bytes")})
    assert await asyncio.wait_for(got, 5) == b"png-bytes"


async def test_message_context_menu_carries_the_target(discord_fake: FakeDiscord, probe: Probe) -> None:
    target = await discord_fake.send_message("look", user="bob", files=[("dog.png", b"dog")])
    got: asyncio.Future[discord.Message] = asyncio.get_running_loop().create_future()

    async def read(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message("ok", ephemeral=True)
        got.set_result(message)

    probe.behaviour = read
    await discord_fake.context_menu("Probe message", target, user="alice")
    message = await asyncio.wait_for(got, 5)
    assert message.author.name == "bob" and await message.attachments[0].read() == b"dog"


async def test_without_the_intent_only_mentions_carry_content(discord_fake: FakeDiscord, probe: Probe) -> None:
    original = await discord_fake.send_message("an image", user="bob", files=[("a.png", b"a")])
    await discord_fake.send_message("no mention here", user="alice")
    bot_mention = f"<@{discord_fake.bot_user['id']}>"
    await discord_fake.send_message(f"{bot_mention} make it snowy", user="alice", reply_to=original)
    async with asyncio.timeout(5):
        while len(probe.seen) < 3:
            await asyncio.sleep(0.01)
    plain, mentioned = probe.seen[1], probe.seen[2]
    assert plain.content == ""
    assert mentioned.content.endswith("make it snowy") and probe.user in mentioned.mentions
    assert mentioned.reference is not None and mentioned.reference.message_id == int(original["id"])
    resolved = mentioned.reference.resolved
    assert isinstance(resolved, discord.Message) and resolved.attachments == []  # another member's: stripped


async def test_buttons_and_modals_round_trip(discord_fake: FakeDiscord, probe: Probe) -> None:
    answers: asyncio.Queue[str] = asyncio.Queue()

    class Ask(discord.ui.Modal, title="Edit"):
        instruction = discord.ui.TextInput(label="Instruction", custom_id="instruction")

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"got {self.instruction.value}", ephemeral=True)
            answers.put_nowait(self.instruction.value)

    class Buttons(discord.ui.View):
        @discord.ui.button(label="Edit", custom_id="edit-1")
        async def edit(self, interaction: discord.Interaction, _: discord.ui.Button[Buttons]) -> None:
            await interaction.response.send_modal(Ask())

    async def post(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("result", view=Buttons())

    await run_probe(discord_fake, probe, post)
    posted = await discord_fake.wait_for_message(lambda m: m["content"] == "result")
    click = await discord_fake.click(posted, "edit-1", user="alice")
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == click.id)
    assert click.modal is not None and click.modal["custom_id"]
    await discord_fake.submit_modal(click, {"instruction": "make it snowy"})
    assert await asyncio.wait_for(answers.get(), 5) == "make it snowy"
