"""A fake MindVideo developer API (provider-api.md §3): Idempotency-Key replays and 409, normalised statuses,
`output.images[].url`, `cost_estimate` / `cost_actual`, and schemas that reject unknown fields."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.hub import FakeHub, Fault, Task

SCHEMAS = {  # model slug -> allowed input keys and max n
    "gemini-2-5-flash-image-preview-official": ({"prompt", "n", "size", "resolution", "image_urls", "mask_url"}, 4),
    "gemini-3-pro-image-preview-official": ({"prompt", "n", "size", "resolution", "image_urls"}, 4),
    "gemini-3-1-flash-image-preview": ({"prompt", "n", "size", "resolution", "image_urls"}, 4),
    "gpt-image-2": ({"prompt", "n", "size", "resolution", "image_urls"}, 1),
}
COST = 0.0351


class FakeMindVideo(FakeHub):
    """Same task machinery as the fake Hub, MindVideo's routes and shapes."""

    def __init__(self, api_key: str = "mv_live_test") -> None:
        self.slow_answers = 0  # submits whose task is created but whose answer never arrives in time
        self.keys: list[str | None] = []  # the Idempotency-Key of every submit, in order
        super().__init__(api_key=api_key)
        self.idempotency: dict[str, tuple[str, str]] = {}  # key -> (payload fingerprint, task id)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/v1/tasks", self._mv_submit)
        router.add_get("/api/v1/tasks/{task_id}", self._mv_poll)
        router.add_get("/files/{task_id}/{index}", self._file)

    async def _mv_submit(self, request: web.Request) -> web.StreamResponse:
        self.submit_calls += 1
        body = await request.json()
        if (scripted := await self._scripted(request, self.submit_faults)) is not None:
            return scripted
        if not self._authorised(request):
            return web.json_response({"error": {"code": 401, "message": "invalid API key"}}, status=401)
        key = request.headers.get("Idempotency-Key")
        self.keys.append(key)
        fingerprint = json.dumps(body, sort_keys=True)
        if key and key in self.idempotency:
            seen, task_id = self.idempotency[key]
            if seen != fingerprint:
                return web.json_response(
                    {"error": {"code": 409, "message": "Idempotency-Key reused with a different payload"}}, status=409
                )
            return web.json_response(self._task_body(self.tasks[task_id], request))
        problem = _invalid(body)
        if problem:
            return web.json_response({"error": {"code": 422, "message": problem}}, status=422)
        self.submissions.append(body)
        plan = self.plans.popleft() if self.plans else self.default_plan()
        task = Task(
            id=f"task_{uuid.uuid4().hex[:12]}", model=body["model"], input=body["input"], created=time.time(), plan=plan
        )
        self.tasks[task.id] = task
        if key:
            self.idempotency[key] = (fingerprint, task.id)
        if self.slow_answers:  # the task exists, but the answer takes longer than any client waits
            self.slow_answers -= 1
            return await self._fault(request, Fault(delay=30, status=202, body=self._task_body(task, request)))
        return web.json_response(self._task_body(task, request), status=202)

    async def _mv_poll(self, request: web.Request) -> web.StreamResponse:
        self.poll_calls += 1
        if (scripted := await self._scripted(request, self.poll_faults)) is not None:
            return scripted
        if not self._authorised(request):
            return web.json_response({"error": {"code": 401, "message": "invalid API key"}}, status=401)
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return web.json_response({"error": {"code": 404, "message": "task not found"}}, status=404)
        task.polls += 1
        return web.json_response(self._task_body(task, request))

    def _task_body(self, task: Task, request: web.Request) -> dict[str, Any]:
        elapsed = time.time() - task.created
        body: dict[str, Any] = {"request_id": f"req_{task.id}", "task_id": task.id, "cost_estimate": COST}
        if elapsed < task.plan.duration:
            body["status"] = "queued" if elapsed < task.plan.duration * 0.2 else "processing"
            return body
        if task.first_seen_done is None:
            task.first_seen_done = time.time()
        if task.plan.outcome == "completed":
            n = int(task.input.get("n", 1))
            body.update(
                status="succeeded",
                cost_actual=COST * n,
                output={"images": [{"url": f"http://{request.host}/files/{task.id}/{i}"} for i in range(n)]},
            )
        else:
            body.update(
                status="failed" if task.plan.outcome != "cancelled" else "cancelled",
                error={"code": "generation_failed", "message": task.plan.error_message},
            )
        return body


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict) or set(body) != {"model", "input"} or not isinstance(body["input"], dict):
        return "body must be {model, input}"
    schema = SCHEMAS.get(body["model"])
    if schema is None:
        return f"unknown model {body['model']}"
    allowed, max_n = schema
    data = body["input"]
    unknown = set(data) - allowed
    if unknown:
        return f"additional properties are not allowed: {sorted(unknown)}"
    prompt = str(data.get("prompt", ""))
    if not 1 <= len(prompt) <= 1000:
        return "prompt must be 1-1000 characters"
    if not 1 <= int(data.get("n", 1)) <= max_n:
        return f"n must be 1-{max_n}"
    if "mask_url" in data and not data.get("image_urls"):
        return "mask_url requires image_urls"
    if len(data.get("image_urls", [])) > 14:
        return "at most 14 image_urls"
    return None
