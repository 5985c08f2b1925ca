"""Submitting through a provider the way the runner does: build the body once, then send it."""

from __future__ import annotations

from typing import Any

from bot.providers.base import ImageProvider


async def submit_to(provider: ImageProvider, model: str, params: dict[str, Any], key: str) -> str:
    return await provider.submit(provider.request_body(model, params), key)
