"""Which configured providers can serve a request, in the order the settings prefer for its model family."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.errors import InvalidRequest
from bot.i18n import Msg, msg
from bot.providers.base import ImageProvider
from bot.providers.live_catalog import ModelCatalogue

DEFAULT_ORDER = ("hub", "gemini", "mindvideo")
PROVIDER_LABELS = {"hub": "MountSea Hub", "gemini": "MountSea Gemini", "mindvideo": "MindVideo"}


class Router:
    """Routes a request to the first capable provider; the rest of the route is the failover path."""

    def __init__(
        self,
        providers: Mapping[str, ImageProvider],
        order: Mapping[str, list[str]],
        catalogue: ModelCatalogue | None = None,
    ) -> None:
        self.providers = providers
        self._order = order
        self.catalogue = catalogue or ModelCatalogue(None)

    def order(self, family: str) -> list[str]:
        return [name for name in self._order.get(family, DEFAULT_ORDER) if name in self.providers]

    def serving(self, family: str) -> list[str]:
        """Configured providers that have this model family at all, in preference order (none when the
        model is not on offer)."""
        if not self.catalogue.is_offered(family):
            return []
        return [name for name in self.order(family) if self.providers[name].unsupported(family, {}) is None]

    def route(self, model: str, params: dict[str, Any]) -> list[str]:
        """Capable providers in preference order; InvalidRequest naming why when there are none."""
        refusal = self.catalogue.refusal(model)
        if refusal is not None:
            raise InvalidRequest(refusal)
        family = model.removesuffix("-edit")
        route: list[str] = []
        reasons: list[Msg] = []
        for name in self.order(family):
            reason = self.providers[name].unsupported(model, params)
            if reason is None:
                route.append(name)
            else:
                reasons.append(msg("request.service_reason", service=PROVIDER_LABELS.get(name, name), reason=reason))
        if not route:
            why = reasons[0] if reasons else msg("request.no_service_configured")
            for reason in reasons[1:]:
                why = msg("list.semicolon", first=why, second=reason)
            raise InvalidRequest("request.no_service", why=why)
        return route
