"""Edits keep their source image's shape: `auto` where the edit model takes it, else the nearest ratio."""

from __future__ import annotations

from bot.client import ImageBot
from bot.providers.aspect import keep_source_ratio, nearest_ratio
from bot.providers.catalog import RATIOS_10, ImageOptions, api_params, build_edit_input
from cogs.results import UPSCALE_PROMPT, VARY_PROMPT
from tests.e2e.test_buttons import buttons, result_of, submission
from tests.e2e.test_edit import mention
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.fakes.images import png

WIDE = png(96, 54)  # 16:9
TALL = png(40, 60)  # 2:3


async def test_reply_and_context_menu_edits_keep_the_shape(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    upload = await discord_fake.send_message("mine", user="alice", files=[("wide.png", WIDE)])
    await discord_fake.send_message(f"{mention(discord_fake)} add snow", user="alice", files=[("tall.png", TALL)])
    reply = await submission(hub, 0)
    assert reply["model"] == "nano-banana-edit" and reply["input"]["aspect_ratio"] == "2:3"  # no `auto` there

    opened = await discord_fake.context_menu("Edit image", upload, user="alice")
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == opened.id)
    await discord_fake.submit_modal(opened, {discord_fake.modal_fields(opened)[0]["custom_id"]: "add a hat"})
    menu = await submission(hub, 1)
    assert menu["model"] == "nano-banana-edit" and menu["input"]["aspect_ratio"] == "16:9"


async def test_vary_and_upscale_send_auto_where_the_model_takes_it(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    hub.plan_next(image=WIDE)
    result = await result_of(discord_fake, hub, {"prompt": "a fox", "model": "nano-banana-pro"})
    await discord_fake.click(result, buttons(result)["Vary"])
    await discord_fake.click(result, buttons(result)["Upscale"])
    await submission(hub, 2)
    # The two clicks run side by side: tell the submissions apart by their prompts, not their order.
    (vary,) = [s for s in hub.submissions[1:] if s["input"]["prompt"].startswith(VARY_PROMPT.format(""))]
    (upscale,) = [s for s in hub.submissions[1:] if s["input"]["prompt"] == UPSCALE_PROMPT]
    assert vary["input"]["aspect_ratio"] == "auto" and upscale["input"]["aspect_ratio"] == "auto"
    assert upscale["input"]["resolution"] == "2K"


async def test_vary_sends_the_nearest_ratio_where_there_is_no_auto(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    hub.plan_next(image=WIDE)
    plain = await result_of(discord_fake, hub, {"prompt": "a fox", "model": "nano-banana"})
    await discord_fake.click(plain, buttons(plain)["Vary"])
    assert (await submission(hub, 1))["input"]["aspect_ratio"] == "16:9"


async def test_a_chosen_ratio_wins(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    await discord_fake.slash("edit", {"prompt": "x", "image": ("wide.png", WIDE), "aspect_ratio": "1:1"})
    assert (await submission(hub, 0))["input"]["aspect_ratio"] == "1:1"


def test_gpt_image_2_edits_with_only_a_resolution_keep_the_ratio() -> None:
    options = keep_source_ratio("gpt-image-2-edit", ImageOptions(resolution="2K"), 1920, 1080)
    size = api_params(build_edit_input("gpt-image-2-edit", "x", 1, options, has_mask=False))["image_size"]
    assert abs(size["width"] / size["height"] - 16 / 9) < 0.02 and size["width"] % 16 == 0
    untouched = keep_source_ratio("gpt-image-2-edit", ImageOptions(), 1920, 1080)
    auto = api_params(build_edit_input("gpt-image-2-edit", "x", 1, untouched, has_mask=False))
    assert auto["image_size"] == "auto"  # the edit model's own default keeps the shape
    panorama = keep_source_ratio("gpt-image-2-edit", ImageOptions(resolution="1K"), 4000, 500)
    wide = api_params(build_edit_input("gpt-image-2-edit", "x", 1, panorama, has_mask=False))["image_size"]
    assert wide["width"] <= 3 * wide["height"]  # the vendor's 3:1 limit


def test_nearest_ratio() -> None:
    assert nearest_ratio(1920, 1080, RATIOS_10) == "16:9"
    assert nearest_ratio(1080, 1920, RATIOS_10) == "9:16"
    assert nearest_ratio(1000, 1010, RATIOS_10) == "1:1"
    assert nearest_ratio(4000, 1000, RATIOS_10) == "21:9"
