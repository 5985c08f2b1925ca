"""Log lines as an operator reads them: JSON objects with job context, and never a secret in either format."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.ops.logs import configure_logging, log_context

TOKEN = "discord-token-abcdef"
KEY = "mountsea-key-123456"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def fail_with_secret() -> None:
    try:
        raise RuntimeError(f"request with Bearer {KEY} failed")
    except RuntimeError:
        logging.getLogger("bot.test").exception("boom for %s", TOKEN)


def test_json_lines_carry_job_context_and_no_secrets(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", [TOKEN, KEY], stream=out)
    log = logging.getLogger("bot.jobs.runner")
    log.info("job %d: submitted", 7, extra={"job_id": 7, "guild_id": 10, "provider": "hub", "task_id": "hub-1"})
    with log_context(provider="mindvideo", guild_id=11):
        log.warning("retrying with key %s", KEY)
    log.info("plain line")
    fail_with_secret()
    entries = [json.loads(line) for line in lines(out)]
    assert entries[0]["message"] == "job 7: submitted" and entries[0]["level"] == "INFO"
    assert {k: entries[0][k] for k in ("job_id", "guild_id", "provider", "task_id")} == {
        "job_id": 7,
        "guild_id": 10,
        "provider": "hub",
        "task_id": "hub-1",
    }
    assert entries[1]["provider"] == "mindvideo" and entries[1]["guild_id"] == 11
    assert entries[1]["message"] == "retrying with key [redacted]"
    assert "job_id" not in entries[2] and "provider" not in entries[2]
    assert "[redacted]" in entries[3]["exception"] and "Traceback" in entries[3]["exception"]
    assert TOKEN not in out.getvalue() and KEY not in out.getvalue()


def test_text_lines_hide_secrets_in_messages_and_tracebacks(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", [TOKEN, KEY], stream=out)
    logging.getLogger("bot").info("token is %s", TOKEN)
    fail_with_secret()
    text = out.getvalue()
    assert "token is [redacted]" in text and "Bearer [redacted] failed" in text
    assert TOKEN not in text and KEY not in text


async def test_the_job_id_comes_from_the_task_driving_the_job(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", [], stream=out)

    async def drive() -> None:
        logging.getLogger("bot.jobs.runner").debug("poll 3")

    await asyncio.create_task(drive(), name="job-42")
    assert json.loads(lines(out)[-1])["job_id"] == 42
