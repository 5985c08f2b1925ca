"""Crash test (issue 10): SIGKILL a real bot process 20 times at random points of jobs in flight, then check that
nothing acknowledged was lost and nothing was done twice.

This process runs the fake Discord, the fake Hub and the fake MindVideo (Idempotency-Key semantics) on loopback; the
bot runs as a separate process (tests/bot_process.py: `bot.__main__.run(settings)`, settings from the environment,
a real SQLite file, 1-second job leases). Members send /imagine and /edit requests, each with a unique prompt (Hub and
MindVideo models), and click Cancel now and then, while the bot is killed: at a random time after it started, while
it starts, or inside a fake's handler of an event of one kind (an acknowledgement, a status message posted or edited,
a result posted, the answer edited, a Hub or MindVideo task created, a poll that finds a task done), after the fake
acted on it and before the bot hears the answer. After each kill the bot starts again on the same database. After
the 20th kill the last process finishes everything and is stopped with SIGTERM; then, from the fakes and the database:

(a) every job ended exactly once: closed, terminal; a succeeded job has exactly one result message with all its
    images (and is charged), a failed, timed-out or cancelled one has no result message and exactly one refund;
    no job is left open, and no input image bytes are kept;
(b) no provider task was created twice for a job (at most one Hub or MindVideo task per prompt), and no MindVideo
    resend was refused (409: a resend that was not byte-identical);
(c) the ledger balances: per member, charges minus refunds equal the costs of the delivered jobs; one charge per
    job, at its price; at most one refund;
(d) each job has exactly one status message, and it shows the job's outcome with no live Cancel button (Done links
    to the posted result; Failed and Cancelled say the credits were given back); and no post was repeated, so
    Discord's nonce check (a few minutes only) was never what kept a message single;
(e) every acknowledged request has its job row, and the member can see what became of it: either the answer was
    edited to name the job, or (killed between acknowledging and answering: Discord leaves that "thinking…" and the
    interaction token died with the process) the job's status message in the channel shows its outcome. What a
    member was told about a Cancel click holds.

Reproduce a run with CRASH_TEST_SEED=<seed printed at the start> (the kill points and requests follow the seed; the
exact interleaving also depends on timing). The bot's log is tmp_path/bot.log; the kills, the requests and a summary
are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import re
import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image

from bot.config import Settings
from tests.bot_process import BotLauncher
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.model import FakeInteraction, error_response
from tests.fakes.hub import FakeHub, Plan
from tests.fakes.mindvideo import FakeMindVideo

SEED_ENV = "CRASH_TEST_SEED"
KILLS = 20
MEMBERS = 6
MAX_REQUESTS = 30
LEASE_SECONDS = 1.0
ARM_TIMEOUT = 2.5  # an armed kill point that sees no event by then kills anyway
DRAIN_TIMEOUT = 45.0

# Where the 20 kills land, shuffled by the seed. "time": 0.2-2.2 s after the process started; "startup": 0.05-0.6 s
# after (while it resumes jobs, often before it connected); the others: inside the fake's handler of the next such
# event (or the nth, for a round's own requests) after a random moment, once the fake has acted on the request and
# before the bot gets the answer. A point that sees no such event within ARM_TIMEOUT kills anyway ("fallback").
KILL_POINTS = (
    ["time"] * 3
    + ["before_ack"]
    + ["startup"] * 2
    + ["ack"] * 3
    + ["hub_submit"] * 2
    + ["mindvideo_submit"]
    + ["status_post"] * 2
    + ["result_post"] * 2
    + ["status_edit", "final_status", "answer", "poll_done"]
)
assert len(KILL_POINTS) == KILLS

STATUS_FOOTER = re.compile(r"^Job #(\d+)$")
RESULT_FOOTER = re.compile(r"^Job #(\d+) · ")
JOB_IN_ANSWER = re.compile(r"job \*\*#(\d+)\*\*")
FINAL_TITLES = {"✅ Done": "done", "❌ Failed": "failed", "⏹️ Cancelled": "cancelled"}


def footer(message: dict[str, Any]) -> str:
    embeds = message.get("embeds") or [{}]
    return str((embeds[0].get("footer") or {}).get("text", ""))


def title(message: dict[str, Any]) -> str:
    return str((message.get("embeds") or [{}])[0].get("title", ""))


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [str(c.get("custom_id")) for row in message.get("components", []) for c in row.get("components", [])]


def photo(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


# -- killing -------------------------------------------------------------------------------------------------------


@dataclass
class Kill:
    round: int
    point: str
    how: str  # "event: <what>", "time", "fallback" (the armed point saw no event in time)
    at: float


class Killer:
    """Kills the running bot when the armed point's event reaches a fake (or when told to)."""

    def __init__(self, launcher: BotLauncher, started: float) -> None:
        self.launcher = launcher
        self.started = started
        self.armed: str | None = None
        self.countdown = 0
        self.round = -1
        self.killed_round = -1
        self.fired = asyncio.Event()
        self.kills: list[Kill] = []

    def arm(self, round_: int, point: str, nth: int = 1) -> None:
        """Kill at the `nth` event of this kind from now on."""
        self.round, self.armed, self.countdown = round_, point, nth
        self.fired.clear()

    async def observe(self, point: str, what: str) -> bool:
        """Called by the fakes after acting on a request and before answering it; True if it killed the bot."""
        if self.armed != point or not self.launcher.alive:
            return False
        self.countdown -= 1
        if self.countdown > 0:
            return False
        self.armed = None
        await self.kill(self.round, point, f"event: {what}")
        return True

    async def kill(self, round_: int, point: str, how: str) -> None:
        self.armed = None
        if not self.launcher.alive or self.killed_round == round_:
            return  # already dead, or being killed (an event and the fallback at the same moment)
        self.killed_round = round_
        self.kills.append(Kill(round_, point, how, time.time() - self.started))
        await self.launcher.kill()
        self.fired.set()


class CrashDiscord(FakeDiscord):
    killer: Killer | None = None
    nonce_repeats = 0  # posts that Discord's nonce check answered with the earlier message

    async def _create_message(self, request: web.Request) -> web.Response:
        before = set(self.messages)
        response = await super()._create_message(request)
        made = json.loads(response.body) if response.status == 200 and isinstance(response.body, bytes) else {}
        if made and int(made["id"]) in before:
            self.nonce_repeats += 1
        return response

    async def _callback(self, request: web.Request) -> web.Response:
        """ "before_ack": killed while sending the acknowledgement, which Discord then never gets."""
        what = f"acknowledgement of {request.match_info['id']} never arrives"
        if self.killer is not None and await self.killer.observe("before_ack", what):
            return error_response(500, 0, "the bot is gone")
        return await super()._callback(request)

    async def _record(self, kind: str, data: dict[str, Any]) -> None:
        await super()._record(kind, data)
        if self.killer is None:
            return
        point = self._point(kind, data)
        if point is not None:
            await self.killer.observe(point, f"{kind} {data.get('id') or data.get('interaction')} {footer(data)}")

    def _point(self, kind: str, data: dict[str, Any]) -> str | None:
        if kind == "callback":
            return "ack" if data.get("type") == 5 else None
        if kind not in ("message_create", "message_update"):
            return None
        if data.get("webhook_id") is not None:  # an interaction's own message
            return "answer" if kind == "message_update" and JOB_IN_ANSWER.search(data.get("content", "")) else None
        if STATUS_FOOTER.match(footer(data)):
            if kind == "message_create":
                return "status_post"
            return "final_status" if title(data) in FINAL_TITLES else "status_edit"
        if kind == "message_create" and RESULT_FOOTER.match(footer(data)):
            return "result_post"
        return None


class CrashHub(FakeHub):
    killer: Killer | None = None

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        response = await super()._submit(request)
        if self.killer is not None and response.status == 200:
            await self.killer.observe("hub_submit", "hub task created")
        return response

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        response = await super()._poll(request)
        if self.killer is not None and isinstance(response, web.Response) and response.status == 200:
            assert isinstance(response.body, bytes)
            if json.loads(response.body).get("ready"):
                await self.killer.observe("poll_done", "hub task seen done")
        return response


class CrashMindVideo(FakeMindVideo):
    killer: Killer | None = None

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[dict[str, Any]] = []  # 409s: a resend that was not byte-identical

    async def _mv_submit(self, request: web.Request) -> web.StreamResponse:
        response = await super()._mv_submit(request)
        if response.status == 409:
            self.refused.append(await request.json())
        if self.killer is not None and response.status in (200, 202):
            await self.killer.observe("mindvideo_submit", f"mindvideo submit answered {response.status}")
        return response

    async def _mv_poll(self, request: web.Request) -> web.StreamResponse:
        response = await super()._mv_poll(request)
        if self.killer is not None and isinstance(response, web.Response) and response.status == 200:
            assert isinstance(response.body, bytes)
            if json.loads(response.body).get("status") in ("succeeded", "failed", "cancelled"):
                await self.killer.observe("poll_done", "mindvideo task seen done")
        return response


# -- members' requests ---------------------------------------------------------------------------------------------


@dataclass
class Request:
    round: int
    kind: str  # imagine | edit
    prompt: str
    user: str
    options: dict[str, Any]
    interaction: FakeInteraction


@dataclass
class Click:
    round: int
    job_id: int
    user: str
    interaction: FakeInteraction


@dataclass
class Members:
    """What the members did during the run."""

    rng: random.Random
    seed: int
    discord_fake: FakeDiscord
    requests: list[Request] = field(default_factory=list)
    clicks: list[Click] = field(default_factory=list)

    async def act(
        self,
        round_: int,
        launcher: BotLauncher,
        identifies: int,
        sends: list[float],
        click: float | None,
        route: str | None,
    ) -> None:
        """Once the bot process is connected: send requests after the given pauses (the first one to `route`'s
        provider, when given), then maybe click Cancel; nothing more once it has been killed."""
        try:
            await connected(self.discord_fake, launcher, identifies)
        except ProcessGone:
            return
        for i, pause in enumerate(sends):
            await asyncio.sleep(pause)
            if not launcher.alive or len(self.requests) >= MAX_REQUESTS:
                return
            await self.request(round_, route if i == 0 else None)
        if click is not None:
            await asyncio.sleep(click)
            if launcher.alive:
                await self.cancel_one(round_)

    async def request(self, round_: int, route: str | None = None) -> None:
        """One /imagine or /edit with a unique prompt; `route` "hub" or "mindvideo" picks a model served there."""
        rng, n = self.rng, len(self.requests)
        user = f"member{rng.randrange(MEMBERS)}"
        channel = rng.choice(self.discord_fake.channel_ids[:2])
        prompt = f"crash {self.seed} request {n}: a {rng.choice(['red', 'green', 'blue'])} {rng.choice(['fox', 'owl'])}"
        # nano-banana-2 goes to MindVideo first (idempotent submits), the rest to the Hub (no idempotency key).
        if rng.random() < 0.7:
            kind = "imagine"
            model = rng.choice(["nano-banana", "nano-banana-2"])
            model = {"hub": "nano-banana", "mindvideo": "nano-banana-2"}.get(route or "", model)
            options: dict[str, Any] = {"prompt": prompt, "model": model}
            if rng.random() < 0.3:
                options["count"] = 2
            if options["model"] == "nano-banana-2" and rng.random() < 0.4:
                options["resolution"] = "2K"
        else:
            kind = "edit"
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            options = {"prompt": prompt, "image": ("photo.png", photo(colour))}
            if (rng.random() < 0.5 or route == "mindvideo") and route != "hub":
                options["model"] = "nano-banana-2-edit"
        interaction = await self.discord_fake.slash(kind, options, user=user, channel_id=channel)
        shown = {k: v for k, v in options.items() if k not in ("prompt", "image")}
        print(f"  round {round_}: {user} /{kind} {shown} #{n} (interaction {interaction.id})")
        self.requests.append(Request(round_, kind, prompt, user, options, interaction))

    async def cancel_one(self, round_: int) -> None:
        """The owner of a job that still shows Cancel clicks it."""
        by_prompt = {r.prompt: r for r in self.requests}
        candidates = []
        for channel in self.discord_fake.channel_ids[:2]:
            for message in self.discord_fake.channel_messages(channel):
                cancel = [c for c in custom_ids(message) if c.startswith("img:x:")]
                description = (message.get("embeds") or [{}])[0].get("description")
                if cancel and description in by_prompt:
                    candidates.append((message, cancel[0], by_prompt[description].user))
        if not candidates:
            print(f"  round {round_}: nothing to cancel")
            return
        message, cancel_id, user = self.rng.choice(candidates)
        interaction = await self.discord_fake.click(message, cancel_id, user=user)
        job_id = int(cancel_id.rsplit(":", 1)[1])
        print(f"  round {round_}: {user} clicks Cancel on job #{job_id}")
        self.clicks.append(Click(round_, job_id, user, interaction))


# -- the run -------------------------------------------------------------------------------------------------------


def bot_env(discord_fake: FakeDiscord, hub: FakeHub, mindvideo: FakeMindVideo, database: Path) -> dict[str, str]:
    """The bot's settings as environment variables (anything of the caller's that names a setting is dropped)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return {
        **env,
        "CRASH_DISCORD_URL": discord_fake.url,
        "DISCORD_TOKEN": FakeDiscord.TOKEN,
        "MOUNTSEA_API_KEY": hub.api_key,
        "MOUNTSEA_BASE_URL": hub.url,
        "MINDVIDEO_API_KEY": mindvideo.api_key,
        "MINDVIDEO_BASE_URL": mindvideo.url,
        "PROVIDER_ORDER": json.dumps({"nano-banana-2": ["mindvideo", "hub"]}),
        "DATABASE_PATH": str(database),
        "LOG_LEVEL": "INFO",
        "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "JOB_DEADLINE_SECONDS": "60",
        "POLL_MIN_INTERVAL_SECONDS": "0.05",
        "POLL_MAX_INTERVAL_SECONDS": "0.3",
        "STATUS_EDIT_MIN_INTERVAL_SECONDS": "0",
        "PROVIDER_RETRY_BASE_SECONDS": "0.01",
        "HTTP_TIMEOUT_SECONDS": "5",
        "QUOTA_DEFAULT_LIMIT": "1000",
        "MAX_RUNNING_JOBS_PER_USER": "2",
        "MAX_WAITING_JOBS_PER_USER": "8",
    }


class ProcessGone(Exception):
    """The bot process ended (was killed) before it connected."""


async def connected(discord_fake: FakeDiscord, launcher: BotLauncher, identifies_before: int) -> None:
    """Until the bot process has identified on the gateway (so it receives what members do)."""
    async with asyncio.timeout(30):
        while discord_fake.identifies <= identifies_before or not discord_fake._sockets:
            if not launcher.alive:
                raise ProcessGone
            await asyncio.sleep(0.02)


def open_jobs(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
        return int(db.execute("SELECT COUNT(*) FROM jobs WHERE closed_at IS NULL").fetchone()[0])


async def test_sigkills_at_random_points_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get(SEED_ENV) or random.randrange(10**6))
    print(f"\ncrash test seed {seed} (rerun with {SEED_ENV}={seed}); bot log: {tmp_path / 'bot.log'}")
    rng = random.Random(seed)
    plan_rng = random.Random(seed + 1)  # how long provider tasks take
    members_rng = random.Random(seed + 2)  # who asks for what
    points = rng.sample(KILL_POINTS, len(KILL_POINTS))
    database = tmp_path / "bot.db"
    started = time.time()
    discord_fake, hub, mindvideo = CrashDiscord(members=MEMBERS), CrashHub(), CrashMindVideo()
    async with discord_fake, hub, mindvideo:
        for fake in (hub, mindvideo):
            fake.default_plan = lambda: Plan(duration=plan_rng.uniform(0.3, 2.5))
        members = Members(members_rng, seed, discord_fake)
        env = bot_env(discord_fake, hub, mindvideo, database)
        async with BotLauncher(env, tmp_path, tmp_path / "bot.log") as launcher:
            killer = Killer(launcher, started)
            discord_fake.killer = hub.killer = mindvideo.killer = killer
            cancel_rounds = set(rng.sample(range(2, KILLS), 3))
            for round_, point in enumerate(points):
                # Everything this round does is drawn now, in order, so the seed decides it.
                count = 4 if round_ == 0 else rng.choice([0, 1, 1, 2, 2])
                if point in ("before_ack", "ack", "answer", "hub_submit", "mindvideo_submit"):  # a request gets there
                    count = max(count, 1)
                route = {"hub_submit": "hub", "mindvideo_submit": "mindvideo"}.get(point)
                sends = [rng.uniform(0.0, 0.3) for _ in range(count)]
                click = rng.uniform(0.0, 0.5) if round_ in cancel_rounds else None
                kill_after = rng.uniform(0.05, 0.6) if point == "startup" else rng.uniform(0.2, 2.2)
                # Points that follow a request or a restart closely are armed early, the others at a random moment.
                early = point in ("before_ack", "ack", "answer", "hub_submit", "mindvideo_submit", "status_post")
                arm_after = rng.uniform(0.0, 0.3) if early else rng.uniform(0.0, 1.2)
                nth = rng.randint(1, count) if point in ("before_ack", "ack", "answer") else 1
                identifies = discord_fake.identifies
                pid = await launcher.start()
                if round_ == 0:  # the first process syncs the commands members use
                    await connected(discord_fake, launcher, identifies)
                acting = asyncio.create_task(members.act(round_, launcher, identifies, sends, click, route))
                if point in ("startup", "time"):
                    await asyncio.sleep(kill_after)
                    await killer.kill(round_, point, f"{kill_after:.2f}s after start")
                else:
                    await asyncio.sleep(arm_after)
                    killer.arm(round_, point, nth)
                    try:
                        await asyncio.wait_for(killer.fired.wait(), ARM_TIMEOUT)
                    except TimeoutError:
                        await killer.kill(round_, point, "fallback (no such event in time)")
                await acting
                last = killer.kills[-1]
                print(f"round {round_}: bot {pid} killed at {last.point} ({last.how}) at {last.at:.1f}s")
            # The last process finishes everything.
            identifies = discord_fake.identifies
            await launcher.start()
            await connected(discord_fake, launcher, identifies)
            drained = time.time() + DRAIN_TIMEOUT
            while open_jobs(database) and time.time() < drained:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # anything still in flight in the fakes
            status = await launcher.stop()
            assert status == 0, f"the last bot process exited with {status}"
            assert not launcher.unexpected_exits, f"bot processes ended on their own: {launcher.unexpected_exits}"
        elapsed = time.time() - started
        print(f"{len(killer.kills)} kills, {launcher.started} bot processes, {elapsed:.1f}s")
        check_everything(database, discord_fake, hub, mindvideo, members, seed)
    assert len(killer.kills) == KILLS


# -- the checks ----------------------------------------------------------------------------------------------------


def check_everything(
    database: Path,
    discord_fake: CrashDiscord,
    hub: FakeHub,
    mindvideo: CrashMindVideo,
    members: Members,
    seed: int,
) -> None:
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.row_factory = sqlite3.Row
        jobs = {int(r["id"]): dict(r) for r in db.execute("SELECT * FROM jobs ORDER BY id")}
        ledger = [dict(r) for r in db.execute("SELECT * FROM quota_ledger ORDER BY id")]
        kept_inputs = db.execute("SELECT job_id, position FROM job_inputs WHERE data IS NOT NULL").fetchall()
    problems: list[str] = []

    def problem(text: str) -> None:
        problems.append(text)

    # Bot messages in the channels, by job.
    statuses: dict[int, list[dict[str, Any]]] = defaultdict(list)
    results: dict[int, list[dict[str, Any]]] = defaultdict(list)
    other: list[dict[str, Any]] = []
    for stored in discord_fake.messages.values():
        message = stored.data
        if stored.ephemeral or stored.deleted or message["author"]["id"] != discord_fake.bot_user["id"]:
            continue
        if message.get("webhook_id") is not None:
            continue  # interaction answers are checked below
        if m := STATUS_FOOTER.match(footer(message)):
            statuses[int(m[1])].append(message)
        elif m := RESULT_FOOTER.match(footer(message)):
            results[int(m[1])].append(message)
        else:
            other.append(message)
    for message in other:
        history = [
            (e.kind, e.data.get("content"), e.data.get("embeds"), e.data.get("components"))
            for e in discord_fake.events
            if e.data.get("id") == message["id"]
        ]
        problem(f"unexpected bot message {message['id']}: {message['content']!r} {footer(message)!r}: {history}")

    charges: dict[int, list[dict[str, Any]]] = defaultdict(list)
    refunds: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in ledger:
        if entry["kind"] == "charge":
            charges[entry["job_id"]].append(entry)
        elif entry["kind"] == "refund":
            refunds[entry["job_id"]].append(entry)
        else:
            problem(f"unexpected ledger entry {entry}")

    # (a), (c), (d): each job ended exactly once, paid for only when delivered, with one status message showing it.
    outcomes: Counter[str] = Counter()
    for job_id, job in jobs.items():
        state = job["state"]
        outcomes[state if state != "failed" else f"failed ({job['error_code']})"] += 1
        where = f"job #{job_id} ({job['prompt']!r}, {state}, error {job['error_code']})"
        if job["closed_at"] is None or state in ("preparing", "queued", "submitted", "running"):
            problem(f"{where} is still open (closed_at {job['closed_at']})")
        if len(charges[job_id]) != 1:
            problem(f"{where} has {len(charges[job_id])} charges")
        elif charges[job_id][0]["period_credits"] + charges[job_id][0]["bonus_credits"] != job["cost"]:
            problem(f"{where} was charged {charges[job_id][0]} for a cost of {job['cost']}")
        posted = results[job_id]
        if state == "succeeded":
            if len(posted) != 1 or job["delivered_at"] is None:
                problem(f"{where}: {len(posted)} result message(s), delivered_at {job['delivered_at']}")
            elif int(posted[0]["id"]) != job["result_message_id"]:
                problem(f"{where}: result message {posted[0]['id']} but {job['result_message_id']} recorded")
            elif len(posted[0]["attachments"]) != json.loads(job["params"]).get("num_images", 1):
                problem(f"{where}: result message {posted[0]['id']} has {len(posted[0]['attachments'])} images")
            if refunds[job_id]:
                problem(f"{where} was delivered and refunded")
        else:
            if posted:
                problem(f"{where} ended {state} but {len(posted)} result message(s) were posted")
            if len(refunds[job_id]) != 1:
                problem(f"{where} ended {state} with {len(refunds[job_id])} refund(s)")
        shown = statuses[job_id]
        if len(shown) != 1:
            problem(f"{where} has {len(shown)} status messages: {[m['id'] for m in shown]}")
        for message in shown:
            said = FINAL_TITLES.get(title(message))
            expected = {"succeeded": "done", "cancelled": "cancelled"}.get(state, "failed")
            if job["error_code"] == "cancelled":  # the provider cancelled the task
                expected = "failed"
            if said != expected:
                problem(f"{where}: status message {message['id']} says {title(message)!r}, not {expected}")
            if any(c.startswith("img:x:") for c in custom_ids(message)):
                problem(f"{where}: status message {message['id']} still has a Cancel button")
            if said == "done" and posted and posted[0]["id"] not in json.dumps(message["embeds"]):
                problem(f"{where}: status message {message['id']} does not link to result {posted[0]['id']}")
            if said in ("failed", "cancelled") and "(given back)" not in json.dumps(message["embeds"]):
                problem(f"{where}: status message {message['id']} does not say the credits were given back")
            if message["id"] != str(job["status_message_id"]):
                problem(f"{where}: status message {message['id']} but {job['status_message_id']} recorded")

    # Input bytes are dropped when a job ends, however it ends (issue 10, item 8).
    for job_id, position in kept_inputs:
        problem(f"job #{job_id} ended but the bytes of its input image {position} are still stored")

    # (c) the ledger balances per member.
    for user_id in {job["user_id"] for job in jobs.values()}:
        paid = sum(e["period_credits"] + e["bonus_credits"] for e in ledger if e["user_id"] == user_id)
        delivered = sum(j["cost"] for j in jobs.values() if j["user_id"] == user_id and j["state"] == "succeeded")
        if paid != delivered:
            problem(f"user {user_id}: ledger holds {paid} credits spent, delivered jobs cost {delivered}")

    # (b) at most one provider task per job (one prompt per job), no MindVideo resend refused.
    tasks_per_prompt = Counter(s["input"]["prompt"] for s in [*hub.submissions, *mindvideo.submissions])
    for prompt, count in tasks_per_prompt.items():
        if count > 1:
            problem(f"{count} provider tasks were created for {prompt!r}")
    for body in mindvideo.refused:
        problem(f"MindVideo refused a resend (409): {body}")
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for job_id, job in jobs.items():
        by_prompt[job["prompt"]].append(job_id)
    for prompt, ids in by_prompt.items():
        if len(ids) > 1:
            problem(f"{len(ids)} jobs for one request {prompt!r}: {ids}")
    tasks = {**hub.tasks, **mindvideo.tasks}
    for job_id, job in jobs.items():
        task = tasks.get(job["provider_task_id"]) if job["provider_task_id"] else None
        if job["state"] == "succeeded" and (task is None or task.input["prompt"] != job["prompt"]):
            problem(f"job #{job_id} succeeded without a provider task of its own ({job['provider_task_id']})")

    # (e) acknowledged requests: a job row each, and the member can see what became of it.
    acknowledged = [r for r in members.requests if r.interaction.acked_at is not None]
    left_thinking = 0
    unacknowledged_run = []
    for request in members.requests:
        ids = by_prompt.get(request.prompt, [])
        if request.interaction.acked_at is None:
            # Never acknowledged (killed first): Discord told the member "the application did not respond". Its row
            # may exist (killed after writing it, before the acknowledgement arrived); then the job still ends
            # exactly once like every other (checked above), and the member is charged for a delivered result.
            unacknowledged_run += ids
            continue
        if len(ids) != 1:
            problem(f"acknowledged request {request.prompt!r} has {len(ids)} job rows")
            continue
        answer = discord_fake.original(request.interaction)
        named = JOB_IN_ANSWER.search(answer["content"]) if answer else None
        if named is not None:
            if int(named[1]) != ids[0]:
                problem(f"request {request.prompt!r} was answered with job #{named[1]}, but its job is #{ids[0]}")
        else:
            left_thinking += 1
            if not statuses[ids[0]]:
                problem(f"request {request.prompt!r}: acknowledged, never answered, and job #{ids[0]} is not shown")
    for click in members.clicks:
        answer = discord_fake.original(click.interaction)
        said = answer["content"] if answer else ""
        job = jobs[click.job_id]
        if said.startswith("Cancelled job") and job["state"] != "cancelled":
            problem(f"member was told job #{click.job_id} was cancelled, but it ended {job['state']}")
        if said.startswith("Too late") and job["state"] == "cancelled":
            problem(f"member was told job #{click.job_id} had finished, but it was cancelled")
    if discord_fake.nonce_repeats:
        # Discord's nonce check only covers a few minutes: after a longer outage only the bot's own records and
        # lookups (find_status, find_result) stand between a restart and a second message.
        problem(f"{discord_fake.nonce_repeats} post(s) were repeated; only Discord's nonce check kept them single")
    rejected = [e.data for e in discord_fake.events if e.kind == "rejected"]
    late = [r["interaction"] for r in rejected if r["reason"] == "late_ack"]
    for refused in rejected:
        if refused["reason"] != "late_ack":
            problem(f"the fake Discord refused a bot request: {refused}")
    if late:
        # Not a crash-safety failure by itself (the bot took over 3 s to acknowledge, e.g. on a loaded machine):
        # such a job ends at once, refunded (checked above like every other job).
        print(f"acknowledgements Discord refused as too late (over 3 s): interactions {late}")

    if unacknowledged_run:
        outcome = {i: jobs[i]["state"] for i in unacknowledged_run}
        print(f"jobs of requests Discord never saw acknowledged, run anyway: {outcome}")
    print(
        f"{len(members.requests)} requests, {len(acknowledged)} acknowledged ({left_thinking} left 'thinking' by a "
        f"kill before the answer), {len(members.clicks)} cancel clicks; {len(jobs)} jobs: {dict(outcomes)}; "
        f"{len(hub.submissions)} Hub and {len(mindvideo.submissions)} MindVideo tasks, "
        f"{hub.submit_calls + mindvideo.submit_calls} submit calls; {discord_fake.nonce_repeats} posts repeated within "
        "Discord's nonce window"
    )
    assert not problems, f"seed {seed}: " + "\n".join(problems)
