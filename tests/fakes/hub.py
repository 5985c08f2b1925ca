"""A fake MountSea Hub on 127.0.0.1 following provider-api.md §1: submit, task poll, and result files.

Tasks run on the wall clock: `pending`, then `processing`, then the scripted outcome once `duration` has
passed. Faults (429 with Retry-After, 500, dropped connections, malformed payloads) are scripted per call.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.gemini import GeminiRoutes
from tests.fakes.images import png
from tests.fakes.loopback import serve

MODELS = {
    "nano-banana",
    "nano-banana-2",
    "nano-banana-pro",
    "gpt-image-2",
    "nano-banana-edit",
    "nano-banana-2-edit",
    "nano-banana-pro-edit",
    "gpt-image-2-edit",
}


@dataclass
class Fault:
    """One scripted answer instead of the normal one."""

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (after reading the request)
    delay: float = 0.0  # wait this long first (longer than the client timeout = a hang)


@dataclass
class Plan:
    """How the next submitted task behaves."""

    duration: float = 0.2
    outcome: str = "completed"  # completed | failed | timeout | cancelled
    image: bytes | None = None
    data_style: str = "fal"  # fal | strings | data_uri | empty | image_object
    error_code: str | None = "content_policy"
    error_message: str | None = "The prompt was blocked by the safety filter"


@dataclass
class Task:
    id: str
    model: str
    input: dict[str, Any]
    created: float
    plan: Plan
    polls: int = 0
    first_seen_done: float | None = None
    fetched_at: float | None = None  # when its first result file was served

    @property
    def ready_at(self) -> float:
        return self.created + self.plan.duration


class FakeHub(GeminiRoutes):
    """Run with `async with FakeHub() as hub:`; `hub.url` is the base URL."""

    def __init__(self, api_key: str = "test-key", id_style: str = "task_id") -> None:
        self.api_key = api_key
        self.id_style = id_style  # task_id | taskId
        self.tasks: dict[str, Task] = {}
        self.submissions: list[dict[str, Any]] = []
        self.submit_faults: deque[Fault | None] = deque()
        self.poll_faults: deque[Fault | None] = deque()
        self.plans: deque[Plan] = deque()
        self.default_plan: Callable[[], Plan] = Plan
        self.submit_calls = 0
        self.poll_calls = 0
        self.listed_models: set[str] = set(MODELS)  # what GET /hub/v1/models lists
        self.models_faults: deque[Fault | None] = deque()
        self.models_calls = 0
        self._counter = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeHub:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        self.add_routes(app.router)
        self._runner, self.url = await serve(app)
        return self

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """MountSea: the Hub and, on the same base URL, the /gemini endpoint."""
        router.add_post("/hub/v1/image", self._submit)
        router.add_get("/hub/v1/tasks/{task_id}", self._poll)
        router.add_get("/hub/v1/models", self._models)
        router.add_get("/files/{task_id}/{index}", self._file)
        self.add_gemini_routes(router)

    async def __aexit__(self, *exc: object) -> None:
        if self._runner:
            await self._runner.cleanup()

    def plan_next(self, **kwargs: Any) -> Plan:
        plan = Plan(**kwargs)
        self.plans.append(plan)
        return plan

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _scripted(self, request: web.Request, faults: deque[Fault | None]) -> web.StreamResponse | None:
        """The next scripted answer, if any (None in the script: answer normally this time)."""
        fault = faults.popleft() if faults else None
        return None if fault is None else await self._fault(request, fault)

    @staticmethod
    async def _fault(request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.05)
            raise ConnectionResetError("dropped by fake")
        if isinstance(fault.body, str):
            return web.Response(status=fault.status, text=fault.body, headers=fault.headers)
        return web.json_response(
            fault.body or {"message": "Internal error"}, status=fault.status, headers=fault.headers
        )

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        self.submit_calls += 1
        body = await request.json()
        if (scripted := await self._scripted(request, self.submit_faults)) is not None:
            return scripted
        if not self._authorised(request):
            return web.json_response({"message": "Invalid API key"}, status=401)
        if not isinstance(body, dict) or set(body) != {"model", "input"} or not isinstance(body["input"], dict):
            return web.json_response({"message": "body must be {model, input}"}, status=400)
        if body["model"] not in MODELS:
            return web.json_response({"message": f"Unknown model: {body['model']}"}, status=404)
        if not str(body["input"].get("prompt", "")).strip():
            return web.json_response({"message": "input.prompt is required"}, status=422)
        self.submissions.append(body)
        plan = self.plans.popleft() if self.plans else self.default_plan()
        task = Task(id=f"hub-{uuid.uuid4()}", model=body["model"], input=body["input"], created=time.time(), plan=plan)
        self.tasks[task.id] = task
        mode = "image-to-image" if body["model"].endswith("-edit") else "text-to-image"
        if self.id_style == "taskId":
            return web.json_response({"taskId": task.id})
        return web.json_response(
            {
                "task_id": task.id,
                "status": "pending",
                "capability": "image",
                "model": task.model,
                "vendor": "OpenAI" if task.model.startswith("gpt") else "Google",
                "mode": mode,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(task.created)),
            }
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        """GET /hub/v1/models?capability=image (§1.6; its schema is undocumented, so this picks a plausible
        one: `{data: [{model, capability, vendor, mode}]}`, filtered by `capability`)."""
        self.models_calls += 1
        if (scripted := await self._scripted(request, self.models_faults)) is not None:
            return scripted
        if not self._authorised(request):
            return web.json_response({"message": "Invalid API key"}, status=401)
        models = [
            {
                "model": model,
                "capability": "image",
                "vendor": "OpenAI" if model.startswith("gpt") else "Google",
                "mode": "image-to-image" if model.endswith("-edit") else "text-to-image",
            }
            for model in sorted(self.listed_models)
        ]
        models.append({"model": "veo-3.1-fast", "capability": "video", "vendor": "Google", "mode": "text-to-video"})
        wanted = request.query.get("capability")
        return web.json_response({"data": [m for m in models if wanted in (None, m["capability"])]})

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        self.poll_calls += 1
        if (scripted := await self._scripted(request, self.poll_faults)) is not None:
            return scripted
        if not self._authorised(request):
            return web.json_response({"message": "Invalid API key"}, status=401)
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return web.json_response({"message": "Task not found"}, status=404)
        if not request.headers.get("X-Bench-Baseline"):
            task.polls += 1
        now = time.time()
        elapsed = now - task.created
        if elapsed < task.plan.duration:
            status = "pending" if elapsed < task.plan.duration * 0.1 else "processing"
            return web.json_response({"task_id": task.id, "status": status, "ready": False})
        if task.first_seen_done is None and not request.headers.get("X-Bench-Baseline"):
            task.first_seen_done = now
        body: dict[str, Any] = {
            "task_id": task.id,
            "status": task.plan.outcome,
            "ready": True,
            "elapsed_ms": int(task.plan.duration * 1000),
        }
        if task.plan.outcome == "completed":
            body["data"] = self._data(request, task)
        else:
            body["error_code"] = task.plan.error_code
            body["error_message"] = task.plan.error_message
        return web.json_response(body)

    def _data(self, request: web.Request, task: Task) -> Any:
        count = int(task.input.get("num_images", 1))
        base = f"http://{request.host}/files/{task.id}"
        style = task.plan.data_style
        if style == "empty":
            return {"description": "no images here"}
        if style == "strings":
            return {"images": [f"{base}/{i}" for i in range(count)]}
        if style == "image_object":
            return {"image": {"url": f"{base}/0"}}
        if style == "data_uri":
            encoded = base64.b64encode(self._image(task)).decode()
            return {"images": [{"url": f"data:image/png;base64,{encoded}"} for _ in range(count)]}
        image = self._image(task)
        return {
            "images": [
                {
                    "url": f"{base}/{i}",
                    "content_type": "image/png",
                    "file_name": f"out-{i}.png",
                    "file_size": len(image),
                    "width": 64,
                    "height": 64,
                }
                for i in range(count)
            ],
            "description": "",
        }

    @staticmethod
    def _image(task: Task) -> bytes:
        return task.plan.image if task.plan.image is not None else png()

    async def _file(self, request: web.Request) -> web.StreamResponse:
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return web.Response(status=404)
        if task.fetched_at is None:
            task.fetched_at = time.time()
        return web.Response(body=self._image(task), content_type="image/png")
