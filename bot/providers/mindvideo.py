"""MindVideo developer API: `POST /api/v1/tasks` with an Idempotency-Key, `GET /api/v1/tasks/{id}` (§3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bot.i18n import Msg, msg
from bot.ops.logs import log_context
from bot.providers.base import ProviderProtocolError, ProviderRejected, TaskState, TaskStatus
from bot.providers.catalog import DEFAULT_SAFETY_TOLERANCE
from bot.providers.http import BearerApi, preview

SLUGS = {
    "nano-banana": "gemini-2-5-flash-image-preview-official",
    "nano-banana-pro": "gemini-3-pro-image-preview-official",
    "nano-banana-2": "gemini-3-1-flash-image-preview",
    "gpt-image-2": "gpt-image-2",
}
KEY_CHECK_TASK = "imagebot-key-check"
MAX_PROMPT = 1000
MAX_N = {"gpt-image-2": 1}  # others: 4
SIZES = ("auto", "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_STATES = {
    "queued": TaskState.PENDING,
    "processing": TaskState.RUNNING,
    "succeeded": TaskState.SUCCEEDED,
    "failed": TaskState.FAILED,
    "cancelled": TaskState.CANCELLED,
}


class MindVideoProvider(BearerApi):
    """Client for MindVideo. Submits are idempotent: the same key and payload return the original task."""

    name = "mindvideo"
    idempotent_submit = True

    def unsupported(self, model: str, params: dict[str, Any]) -> Msg | None:
        family = model.removesuffix("-edit")
        if family not in SLUGS:
            return msg("service.no_such_model")
        if "seed" in params:
            return msg("service.no_seed")
        if params.get("safety_tolerance", DEFAULT_SAFETY_TOLERANCE) != DEFAULT_SAFETY_TOLERANCE:
            return msg("service.no_safety")
        if len(str(params.get("prompt", ""))) > MAX_PROMPT:
            return msg("service.prompt_limit", limit=MAX_PROMPT)
        if int(params.get("num_images", 1)) > MAX_N.get(family, 4):
            return msg("service.max_images", count=MAX_N.get(family, 4))
        if "mask_url" in params and family != "nano-banana":
            return msg("service.mask_gemini_only")
        if family == "gpt-image-2" and isinstance(params.get("image_size"), dict):
            return msg("service.no_custom_size")
        if params.get("aspect_ratio") not in (None, *SIZES):
            return msg("service.no_ratio", ratio=str(params.get("aspect_ratio")))
        if family == "nano-banana" and params.get("resolution") not in (None, "1K"):
            return msg("service.only_1k")
        if params.get("resolution") == "0.5K":
            return msg("service.no_resolution", resolution="0.5K")
        return None

    def request_body(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        # The schema rejects unknown fields (additionalProperties: false): send only documented keys.
        family = model.removesuffix("-edit")
        data: dict[str, Any] = {"prompt": params["prompt"], "n": int(params.get("num_images", 1))}
        if params.get("aspect_ratio"):
            data["size"] = params["aspect_ratio"]
        if params.get("resolution") and family != "gpt-image-2":
            data["resolution"] = params["resolution"]
        if params.get("image_urls"):
            data["image_urls"] = params["image_urls"]
        if params.get("mask_url"):
            data["mask_url"] = params["mask_url"]
        return {"model": SLUGS[family], "input": data}

    async def submit(self, body: dict[str, Any], idempotency_key: str) -> str:
        payload = await self._call(
            "POST",
            "/api/v1/tasks",
            json=body,
            headers={"Idempotency-Key": f"imagebot-{idempotency_key}"},
            idempotent=True,  # the key (random per job) and the identical body make a repeat return the original task
            creates=True,
            what=f"mindvideo submit {body['model']}",
        )
        task_id = payload.get("task_id") or payload.get("id")
        if not isinstance(task_id, str | int) or not str(task_id):
            raise ProviderProtocolError(f"mindvideo submit answer has no task_id: {preview(payload)}")
        return str(task_id)

    async def poll(self, task_id: str) -> TaskStatus:
        path = f"/api/v1/tasks/{quote(task_id, safe='')}"
        with log_context(task_id=task_id):
            return parse_task(await self._call("GET", path, idempotent=True, what=f"mindvideo poll {task_id}"))

    async def check_key(self) -> None:
        """MindVideo documents no listing call, so read a task that does not exist: 404 means the key was
        accepted, 401/403 raise ProviderAuthError."""
        try:
            await self._probe(f"/api/v1/tasks/{KEY_CHECK_TASK}", what="mindvideo key check")
        except ProviderRejected:
            return


def parse_task(payload: dict[str, Any]) -> TaskStatus:
    state = _STATES.get(str(payload.get("status", "")).lower(), TaskState.RUNNING)
    output = payload.get("output")
    images: tuple[str, ...] = ()
    if isinstance(output, dict) and isinstance(output.get("images"), list):
        images = tuple(i["url"] for i in output["images"] if isinstance(i, dict) and isinstance(i.get("url"), str))
    error = payload.get("error")
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    code = error.get("code") if isinstance(error, dict) else None
    cost = payload.get("cost_actual")
    if not isinstance(cost, int | float):
        cost = payload.get("cost_estimate") if isinstance(payload.get("cost_estimate"), int | float) else None
    return TaskStatus(
        state,
        images=images,
        error_code=None if code is None else str(code),
        error_message=message if isinstance(message, str) else None,
        cost=float(cost) if cost is not None else None,
        raw=payload,
    )
