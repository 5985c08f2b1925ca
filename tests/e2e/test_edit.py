"""Editing end to end: /edit, the "Edit image" context menu, and replies that mention the bot."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

from PIL import Image

from bot.client import ImageBot
from bot.config import Settings
from tests.e2e.test_imagine import delivered_result, embed_title, ephemeral_reply, has_files
from tests.fakes.discord import FakeDiscord
from tests.fakes.hub import FakeHub
from tests.fakes.images import noise_png
from tests.harness import running_bot


def photo(colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), colour).save(out, "PNG")
    return out.getvalue()


def mention(discord_fake: FakeDiscord) -> str:
    return f"<@{discord_fake.bot_user['id']}>"


async def hosted_inputs(discord_fake: FakeDiscord, hub: FakeHub, index: int = 0) -> list[bytes]:
    """The bytes behind the image URLs the Hub received (they are hosted on the bot's status message)."""
    async with asyncio.timeout(5):
        while len(hub.submissions) <= index:
            await asyncio.sleep(0.01)
    urls = hub.submissions[index]["input"]["image_urls"]
    hosted = {a["url"]: a for m in discord_fake.channel_messages() for a in m["attachments"]}
    return [discord_fake.attachment_bytes(hosted[url]) for url in urls]


async def test_slash_edit_sends_the_hosted_image_to_the_edit_model(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    interaction = await discord_fake.slash(
        "edit", {"prompt": "make it snowy", "image": ("cat.png", photo()), "image2": ("ref.jpg", photo((1, 2, 3)))}
    )
    assert "job **#1**" in await ephemeral_reply(discord_fake, interaction)
    assert await hosted_inputs(discord_fake, hub) == [photo(), photo((1, 2, 3))]
    assert hub.submissions[0]["model"] == "nano-banana-edit"
    assert hub.submissions[0]["input"]["prompt"] == "make it snowy"
    result = await discord_fake.wait_for_message(lambda m: has_files(m) and "ready" in m["content"])
    assert result["message_reference"]["message_id"]  # a reply to the status message


async def test_a_mask_goes_only_to_gpt_image_2(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    refused = await discord_fake.slash(
        "edit", {"prompt": "x", "image": ("a.png", photo()), "mask": ("m.png", photo((0, 0, 0)))}
    )
    assert "does not take a mask" in await ephemeral_reply(discord_fake, refused)
    await discord_fake.slash(
        "edit",
        {"prompt": "x", "image": ("a.png", photo()), "model": "gpt-image-2-edit", "mask": ("m.png", photo((0, 0, 0)))},
    )
    await hosted_inputs(discord_fake, hub)
    sent = hub.submissions[0]["input"]
    hosted = {a["url"]: a for m in discord_fake.channel_messages() for a in m["attachments"]}
    assert discord_fake.attachment_bytes(hosted[sent["mask_url"]]) == photo((0, 0, 0))
    assert hub.submissions[0]["model"] == "gpt-image-2-edit" and len(sent["image_urls"]) == 1


async def test_bad_inputs_are_refused_and_nothing_is_sent(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    cases: list[tuple[tuple[str, bytes], str]] = [
        (("notes.txt", b"hello"), "not an image"),
        (("broken.png", photo()[:60]), "damaged"),
        (("moving.gif", gif.getvalue()), "animated"),
        (("huge.png", b"\x89PNG" + b"\0" * (10 * 1024 * 1024)), "at most 10 MB"),
    ]
    for upload, needle in cases:
        interaction = await discord_fake.slash("edit", {"prompt": "x", "image": upload})
        assert needle in await ephemeral_reply(discord_fake, interaction)
    await asyncio.sleep(0.1)
    assert hub.submit_calls == 0 and discord_fake.channel_messages() == []


async def test_context_menu_edits_another_members_upload(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    upload = await discord_fake.send_message("my drawing", user="bob", files=[("drawing.png", photo())])
    opened = await discord_fake.context_menu("Edit image", upload, user="alice")
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == opened.id)
    assert opened.modal is not None and opened.modal["title"] == "Edit image"
    fields = discord_fake.modal_fields(opened)
    assert [f["type"] for f in fields] == [4]  # Nano Banana Edit takes no mask, so none is offered
    await discord_fake.submit_modal(opened, {fields[0]["custom_id"]: "add a hat"})
    assert await hosted_inputs(discord_fake, hub) == [photo()]
    assert hub.submissions[0]["input"]["prompt"] == "add a hat"
    status = next(m for m in discord_fake.channel_messages() if m["attachments"] and m["author"]["bot"])
    assert status["message_reference"]["message_id"] == upload["id"]  # the job answers the edited message


async def test_context_menu_on_a_message_without_an_image(bot: ImageBot, discord_fake: FakeDiscord) -> None:
    plain = await discord_fake.send_message("just words", user="bob")
    interaction = await discord_fake.context_menu("Edit image", plain)
    assert "no image I can see" in await ephemeral_reply(discord_fake, interaction)


async def test_reply_to_the_bots_own_result_keeps_the_model_family(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    await discord_fake.slash("imagine", {"prompt": "a castle", "model": "nano-banana-pro"})
    result = await delivered_result(discord_fake)
    result_png = discord_fake.attachment_bytes(result["attachments"][0])
    await discord_fake.send_message(f"{mention(discord_fake)} make it snowy", user="alice", reply_to=result)
    assert await hosted_inputs(discord_fake, hub, index=1) == [result_png]
    assert hub.submissions[1]["model"] == "nano-banana-pro-edit"
    assert hub.submissions[1]["input"]["prompt"] == "make it snowy"


def replies_with(discord_fake: FakeDiscord, needle: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["author"]["bot"] and needle in m["content"]


async def test_replies_explain_what_they_cannot_do(bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub) -> None:
    upload = await discord_fake.send_message("look", user="bob", files=[("a.png", photo())])
    await discord_fake.send_message(f"{mention(discord_fake)} add a hat", user="alice", reply_to=upload)
    await discord_fake.wait_for_message(replies_with(discord_fake, "Apps → Edit image"))
    own = await discord_fake.send_message("mine", user="alice", files=[("c.png", photo())])
    await discord_fake.send_message(f"{mention(discord_fake)}", user="alice", files=[("d.png", photo())])
    await discord_fake.wait_for_message(replies_with(discord_fake, "Tell me what to change"))
    bots_text = await discord_fake.wait_for_message(replies_with(discord_fake, "Tell me what to change"))
    await discord_fake.send_message(f"{mention(discord_fake)} add a hat", user="alice", reply_to=bots_text)
    await discord_fake.wait_for_message(replies_with(discord_fake, "no image to edit"))
    assert own["attachments"]
    doomed = await discord_fake.send_message("soon gone", user="bob", files=[("b.png", photo())])
    await discord_fake.delete(doomed)
    await discord_fake.send_message(f"{mention(discord_fake)} add a hat", user="alice", reply_to=doomed)
    await discord_fake.wait_for_message(replies_with(discord_fake, "was deleted"))
    assert hub.submit_calls == 0
    for message in discord_fake.channel_messages():
        assert (not message["mention_everyone"] and message["mentions"] == []) or not message["author"]["bot"]


async def test_with_the_content_intent_replies_edit_other_members_images(
    settings_for: Callable[..., Settings], discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    async with running_bot(settings_for(message_content_intent=True)):
        upload = await discord_fake.send_message("look", user="bob", files=[("a.png", photo())])
        request = await discord_fake.send_message(f"{mention(discord_fake)} add a hat", user="alice", reply_to=upload)
        assert await hosted_inputs(discord_fake, hub) == [photo()]
        status = await discord_fake.wait_for_message(lambda m: m["author"]["bot"] and bool(m["embeds"]))
        assert status["message_reference"]["message_id"] == request["id"]
        await discord_fake.wait_for_message(has_files)


async def test_the_edit_form_offers_a_mask_for_gpt_image_2(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    await discord_fake.slash("imagine", {"prompt": "a room", "model": "gpt-image-2"})
    result = await delivered_result(discord_fake)
    opened = await discord_fake.context_menu("Edit image", result, user="alice")
    await discord_fake.wait_for(lambda e: e.kind == "callback" and e.data["interaction"] == opened.id)
    text_field, mask_field = discord_fake.modal_fields(opened)
    assert mask_field["type"] == 19
    await discord_fake.submit_modal(
        opened, {text_field["custom_id"]: "paint the wall", mask_field["custom_id"]: ("mask.png", photo((0, 0, 0)))}
    )
    await hosted_inputs(discord_fake, hub, index=1)
    sent = hub.submissions[1]
    assert sent["model"] == "gpt-image-2-edit" and sent["input"]["prompt"] == "paint the wall"
    hosted = {a["url"]: a for m in discord_fake.channel_messages() for a in m["attachments"]}
    assert discord_fake.attachment_bytes(hosted[sent["input"]["mask_url"]]) == photo((0, 0, 0))


async def test_four_big_photos_are_shrunk_to_fit_one_status_message(
    bot: ImageBot, discord_fake: FakeDiscord, hub: FakeHub
) -> None:
    # Four ~7 MB photos: 28 MB in one message is over Discord's 25 MiB request limit (the fake answers 413).
    photos = [(f"photo{i}.png", noise_png(1530 + i, 1530)) for i in range(4)]
    assert sum(len(data) for _, data in photos) > 25 * 1024 * 1024
    options = {"prompt": "make it snowy", "image": photos[0], "image2": photos[1], "image3": photos[2]}
    options["image4"] = photos[3]
    await discord_fake.slash("edit", options)
    hosted = await hosted_inputs(discord_fake, hub)
    assert len(hosted) == 4 and sum(len(data) for data in hosted) <= 25 * 1024 * 1024
    status = await discord_fake.wait_for_message(lambda m: m["author"]["bot"] and len(m["attachments"]) == 4)
    assert "Failed" not in embed_title(status)
    result = await discord_fake.wait_for_message(lambda m: m["author"]["bot"] and "ready" in m["content"])
    assert has_files(result)
