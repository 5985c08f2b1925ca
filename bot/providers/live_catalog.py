"""The models on offer: the bundled catalogue, narrowed to what the Hub lists now (refreshed hourly).

A model is offered only when the bot can validate it (it is in catalog.MODELS) and, once the Hub's list has
been read, the Hub still lists it. When the list cannot be read, the bundled catalogue is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from bot.i18n import Msg, msg
from bot.providers.base import ProviderAuthError, ProviderError
from bot.providers.catalog import MODELS, TEXT_TO_IMAGE_MODELS

log = logging.getLogger(__name__)


class ModelLister(Protocol):
    async def list_models(self) -> frozenset[str]:
        """The model ids the service lists now."""
        ...


class ModelCatalogue:
    """Answers "is this model offered?"; `start()` refreshes it in a named background task."""

    def __init__(self, source: ModelLister | None, refresh_seconds: float = 3600.0) -> None:
        self._source = source
        self._refresh_seconds = refresh_seconds
        self._listed: frozenset[str] | None = None  # None: the bundled catalogue applies
        self._task: asyncio.Task[None] | None = None
        self.refreshed = False

    @property
    def live(self) -> bool:
        """True while the Hub's own list is in force (not the bundled fallback)."""
        return self._listed is not None

    def is_offered(self, model: str) -> bool:
        return model in MODELS and (self._listed is None or model in self._listed)

    def offered_families(self) -> list[str]:
        """Text-to-image models on offer, in catalogue order."""
        return [m for m in TEXT_TO_IMAGE_MODELS if self.is_offered(m)]

    def refusal(self, model: str) -> Msg | None:
        """Why `model` cannot be used, in words for the user, or None when it is offered."""
        if self.is_offered(model):
            return None
        label = MODELS[model].label if model in MODELS else model
        offered = ", ".join(MODELS[m].label for m in self.offered_families())
        return msg("request.model_withdrawn", model=label, offered=offered or msg("request.none_offered"))

    async def refresh(self, *, raise_auth: bool = False) -> None:
        """Read the Hub's list; on any failure fall back to the bundled catalogue (ProviderAuthError is
        re-raised when `raise_auth`, for the startup key check)."""
        self.refreshed = True
        if self._source is None:
            return
        try:
            listed = await self._source.list_models()
        except ProviderAuthError:
            self._listed = None
            if raise_auth:
                raise
            log.error("the Hub refused the API key while listing models; using the bundled catalogue")
            return
        except ProviderError as exc:
            self._listed = None
            log.warning("could not read the Hub's model list (%s); using the bundled catalogue", exc)
            return
        known = listed & MODELS.keys()
        if not known:
            self._listed = None
            log.warning("the Hub's model list names none of the bot's models; using the bundled catalogue")
            return
        if known != self._listed:
            gone = ", ".join(sorted(MODELS.keys() - known)) or "none"
            log.info(
                "live model catalogue: %d of %d models offered; not listed by the Hub: %s",
                len(known),
                len(MODELS),
                gone,
            )
        self._listed = frozenset(known)

    def start(self) -> None:
        """Refresh every `refresh_seconds` in the background until close()."""
        if self._source is not None and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="model-catalogue-refresh")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception:
                log.exception("model catalogue refresh failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
