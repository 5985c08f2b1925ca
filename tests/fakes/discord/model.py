"""Shared pieces of the fake Discord: limits, records, and JSON answers with Discord's exact content type."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MAX_FILES = 10
REQUEST_LIMIT = 25 * 1024 * 1024
HEARTBEAT_RTT = 0.02
EPHEMERAL = 1 << 6
LOADING = 1 << 7


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )


def error_response(status: int, code: int, message: str) -> web.Response:
    return json_response({"code": code, "message": message}, status)


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int
    channel_id: int
    guild_id: int | None
    user_id: int
    sent_at: float
    acked_at: float | None = None
    response_type: int | None = None
    original_id: int | None = None
    source_message_id: int | None = None  # the message whose component was used
    modal: dict[str, Any] | None = None


@dataclass
class Stored:
    data: dict[str, Any]
    ephemeral: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    deleted: bool = False


@dataclass
class Event:
    at: float
    kind: str  # message_create | message_update | message_delete | callback | rejected
    data: dict[str, Any]


@dataclass
class RateLimit:
    method: str
    path: re.Pattern[str]
    remaining: int
    retry_after: float
