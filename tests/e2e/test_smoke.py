from __future__ import annotations

from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub


async def test_imagine_posts_an_image(bot: object, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    await discord_fake.slash("imagine", {"prompt": "a lighthouse at dusk"})
    result = await discord_fake.wait_for_message(lambda m: bool(m["attachments"]))
    assert result["attachments"][0]["filename"].endswith(".png")
