"""Quota bookkeeping in the database: limits, costs, the ledger (charge, refund, grant, reset) and the audit log."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.db import Database
from bot.db.base import Params, Row, Transaction
from bot.errors import UserFacingError
from bot.i18n import msg
from bot.quota.policy import (
    Limit,
    Period,
    Source,
    effective_limit,
    family_of,
    job_cost,
    next_reset,
    normalised_resolution,
    period_start,
)
from bot.quota.sql import (
    _AUDIT,
    _BONUS,
    _CHARGE_OF_JOB,
    _CLEAR_LIMIT,
    _COSTS,
    _LEDGER,
    _LIMITS,
    _RECENT_AUDIT,
    _RECENT_JOBS,
    _REFUND,
    _RESET_SINCE,
    _SET_COST,
    _SET_LIMIT,
    _STANDING,
    _TOP,
    _USED,
)

DM_GUILD = 0  # quotas in DMs are kept under guild id 0 and use the bot-wide default


class Reader(Protocol):
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...


class QuotaExceeded(UserFacingError):
    """Not enough credits left for this job."""


class TooManyJobs(UserFacingError):
    """The user already has as many jobs running and waiting as allowed."""


@dataclass(frozen=True)
class QuotaConfig:
    """Bot-wide quota settings."""

    default_limit: Limit
    weights: Mapping[str, int]
    allow_dms: bool = True
    max_running_per_user: int = 2
    max_waiting_per_user: int = 5


@dataclass(frozen=True)
class Usage:
    """A user's standing in the current period."""

    limit: Limit
    used: int
    bonus: int
    resets_at: datetime

    @property
    def remaining(self) -> int | None:
        if self.limit.credits is None:
            return None
        return max(0, self.limit.credits - self.used) + self.bonus


@dataclass(frozen=True)
class RecentJob:
    id: int
    model: str
    cost: int
    state: str
    created_at: float
    refunded: bool
    provider_cost: float | None = None


@dataclass(frozen=True)
class AuditEntry:
    actor_id: int
    action: str
    target: str
    old_value: str | None
    new_value: str | None
    created_at: float


def guild_key(guild_id: int | None) -> int:
    return DM_GUILD if guild_id is None else guild_id


class QuotaService:
    """Reads and changes quotas. `reserve` and `refund` run inside the caller's transaction."""

    def __init__(self, db: Database, config: QuotaConfig, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.config = config
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- reading ---------------------------------------------------------------------------------

    async def limit_for(self, q: Reader, guild_id: int | None, user_id: int, role_ids: Sequence[int]) -> Limit:
        guild = guild_key(guild_id)
        rows = await q.fetchall(_LIMITS, (guild,)) if guild != DM_GUILD else []
        return self._limit_from(rows, user_id, role_ids)

    def _limit_from(
        self, rows: Sequence[Row] | Sequence[Sequence[Any]], user_id: int, role_ids: Sequence[int]
    ) -> Limit:
        user: Limit | None = None
        roles: list[Limit] = []
        guild_limit: Limit | None = None
        for row in rows:
            scope, target, credits, period = row[0], int(row[1]), row[2], Period(row[3])
            if scope == "user" and target == user_id:
                user = Limit(credits, period, Source.USER)
            elif scope == "role" and target in role_ids:
                roles.append(Limit(credits, period, Source.ROLE, role_id=target))
            elif scope == "guild":
                guild_limit = Limit(credits, period, Source.GUILD)
        return effective_limit(user, roles, guild_limit, self.config.default_limit)

    async def usage(self, q: Reader, guild_id: int | None, user_id: int, role_ids: Sequence[int]) -> Usage:
        limit = await self.limit_for(q, guild_id, user_id, role_ids)
        now = self._now()
        start = period_start(limit.period, now).timestamp()
        used = await _scalar(q, _USED, (guild_key(guild_id), user_id, start))
        bonus = await _scalar(q, _BONUS, (guild_key(guild_id), user_id))
        return Usage(limit, used, bonus, next_reset(limit.period, now))

    async def price(self, q: Reader, guild_id: int | None, model: str, params: Mapping[str, object]) -> int:
        """A job's price, computed once at creation: the model family, the normalised resolution, the count."""
        return self._price_from(await q.fetchall(_COSTS, (guild_key(guild_id),)), model, params)

    def _price_from(
        self, rows: Sequence[Row] | Sequence[Sequence[Any]], model: str, params: Mapping[str, object]
    ) -> int:
        overrides = {str(r[0]): int(r[1]) for r in rows}
        count = params.get("num_images", 1)
        return job_cost(
            model, normalised_resolution(params), count if isinstance(count, int) else 1, self.config.weights, overrides
        )

    async def quote(
        self,
        tx: Transaction,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        model: str,
        params: Mapping[str, object],
    ) -> tuple[Limit, int]:
        """The member's limit and the job's price, inside the creation's transaction."""
        guild = guild_key(guild_id)
        limits = await tx.fetchall(_LIMITS, (guild,)) if guild != DM_GUILD else []
        return self._limit_from(limits, user_id, role_ids), self._price_from(
            await tx.fetchall(_COSTS, (guild,)), model, params
        )

    async def recent_jobs(self, guild_id: int | None, user_id: int, limit: int = 5) -> list[RecentJob]:
        rows = await self._db.fetchall(_RECENT_JOBS, (guild_key(guild_id), user_id, limit))
        return [RecentJob(int(r[0]), str(r[1]), int(r[2]), str(r[3]), float(r[4]), bool(r[5]), r[6]) for r in rows]

    async def top(self, guild_id: int, limit: int = 10) -> list[tuple[int, int]]:
        default = await self.limit_for(self._db, guild_id, 0, ())
        start = period_start(default.period, self._now()).timestamp()
        return [(int(r[0]), int(r[1])) for r in await self._db.fetchall(_TOP, (guild_id, start, limit))]

    async def audit_log(self, guild_id: int, limit: int = 10) -> list[AuditEntry]:
        rows = await self._db.fetchall(_RECENT_AUDIT, (guild_id, limit))
        return [AuditEntry(int(r[0]), str(r[1]), str(r[2]), r[3], r[4], float(r[5])) for r in rows]

    # -- charging --------------------------------------------------------------------------------

    async def admit(self, tx: Transaction, guild_id: int | None, user_id: int, limit: Limit, cost: int) -> int:
        """Check the member's capacity and credits for a job costing `cost` (one statement, inside the creation's
        transaction, under the member's lock); raise TooManyJobs or QuotaExceeded, else return how many of the
        credits come from this period (the rest from bonus)."""
        now = self._now()
        return self._decide(
            guild_id,
            limit,
            cost,
            await tx.fetchone(_STANDING, self._standing_params(guild_id, user_id, limit, now)),
            now,
        )

    def _standing_params(self, guild_id: int | None, user_id: int, limit: Limit, now: datetime) -> dict[str, object]:
        return {"user": user_id, "guild": guild_key(guild_id), "start": period_start(limit.period, now).timestamp()}

    def _decide(self, guild_id: int | None, limit: Limit, cost: int, row: Row | None, now: datetime) -> int:
        """The rules, on the member's standing (jobs live, credits used this period, bonus left)."""
        if guild_id is None and not self.config.allow_dms:
            raise QuotaExceeded("quota.no_dms")
        assert row is not None
        live, used, bonus = int(row[0]), int(row[1]), int(row[2])
        cap = self.config.max_running_per_user + self.config.max_waiting_per_user
        if live >= cap:
            raise TooManyJobs("quota.too_many_jobs", count=live, limit=cap)
        usage = Usage(limit, used, bonus, next_reset(limit.period, now))
        remaining = usage.remaining
        if remaining is not None and cost > remaining:
            when = int(usage.resets_at.timestamp())
            raise QuotaExceeded(
                "quota.not_enough",
                needed=msg("credits.bold", count=cost),
                remaining=remaining,
                period=usage.limit.period.this,
                when=when,
            )
        return cost if limit.credits is None else min(cost, max(0, limit.credits - used))

    async def record_charge(
        self, tx: Transaction, job_id: int, guild_id: int | None, user_id: int, from_period: int, cost: int
    ) -> None:
        """Write the charge `admit` allowed, in the same transaction."""
        now = self._clock()
        await tx.execute(
            _LEDGER, (guild_key(guild_id), user_id, job_id, "charge", now, from_period, cost - from_period, now)
        )

    async def refund(self, tx: Transaction, job_id: int) -> bool:
        """Give a job's charge back; True if this call refunded it (never twice)."""
        charge = await tx.fetchone(_CHARGE_OF_JOB, (job_id,))
        if charge is None:
            return False
        guild, user, start, from_period, from_bonus, charge_id = charge
        if await tx.fetchone(_RESET_SINCE, (guild, user, start, charge_id)):
            from_period = 0  # a reset since the charge already gave these credits back
        changed = await tx.execute(_REFUND, (guild, user, job_id, start, -from_period, -from_bonus, self._clock()))
        return changed == 1

    # -- admin changes (each audited) ------------------------------------------------------------

    async def set_limit(
        self,
        guild_id: int,
        actor_id: int,
        scope: str,
        target_id: int,
        credits: int | None,
        period: Period | None,
        *,
        clear: bool = False,
    ) -> tuple[str, str]:
        """Set (or clear) a user, role or guild limit; returns (old, new) as text."""
        async with self._db.transaction() as tx:
            old = await _limit_text(tx, guild_id, scope, target_id)
            if clear:
                await tx.execute(_CLEAR_LIMIT, (guild_id, scope, target_id))
                new = "none"
            else:
                chosen = period or Period(await _current_period(tx, guild_id, scope, target_id, self.config))
                await tx.execute(_SET_LIMIT, (guild_id, scope, target_id, credits, chosen.value))
                new = describe(Limit(credits, chosen))
            await self._audit(tx, guild_id, actor_id, f"set {scope} limit", f"{scope}:{target_id}", old, new)
        return old, new

    async def set_cost(self, guild_id: int, actor_id: int, cost_key: str, credits: int) -> tuple[str, str]:
        async with self._db.transaction() as tx:
            overrides = {str(r[0]): int(r[1]) for r in await tx.fetchall(_COSTS, (guild_id,))}
            model, _, resolution = cost_key.partition(":")
            cost_key = family_of(model) + (f":{resolution}" if resolution else "")
            old = str(job_cost(model, resolution or None, 1, self.config.weights, overrides))
            await tx.execute(_SET_COST, (guild_id, cost_key, credits))
            await self._audit(tx, guild_id, actor_id, "set cost", cost_key, old, str(credits))
        return old, str(credits)

    async def grant(self, guild_id: int, actor_id: int, user_id: int, credits: int) -> int:
        """Give one-off bonus credits (kept until used); returns the new bonus balance."""
        async with self._db.transaction() as tx:
            await tx.lock("user", user_id)
            before = await _scalar(tx, _BONUS, (guild_id, user_id))
            now = self._clock()
            await tx.insert(_LEDGER, (guild_id, user_id, None, "grant", now, 0, -credits, now))
            await self._audit(tx, guild_id, actor_id, "grant", f"user:{user_id}", str(before), str(before + credits))
        return before + credits

    async def reset_user(self, guild_id: int, actor_id: int, user_id: int, role_ids: Sequence[int]) -> int:
        """Zero the user's usage in the current period; returns what it was."""
        async with self._db.transaction() as tx:
            await tx.lock("user", user_id)
            usage = await self.usage(tx, guild_id, user_id, role_ids)
            now = self._clock()
            if usage.used:
                await tx.insert(_LEDGER, (guild_id, user_id, None, "reset", now, -usage.used, 0, now))
            await self._audit(tx, guild_id, actor_id, "reset usage", f"user:{user_id}", str(usage.used), "0")
        return usage.used

    async def _audit(
        self, tx: Transaction, guild_id: int, actor_id: int, action: str, target: str, old: str, new: str
    ) -> None:
        await tx.insert(_AUDIT, (guild_id, actor_id, action, target, old, new, self._clock()))


def describe(limit: Limit) -> str:
    return f"unlimited per {limit.period}" if limit.credits is None else f"{limit.credits} per {limit.period}"


async def _scalar(q: Reader, sql: str, params: Params) -> int:
    row = await q.fetchone(sql, params)
    return int(row[0]) if row is not None and row[0] is not None else 0


async def _limit_text(q: Reader, guild_id: int, scope: str, target_id: int) -> str:
    for row in await q.fetchall(_LIMITS, (guild_id,)):
        if row[0] == scope and int(row[1]) == target_id:
            return describe(Limit(row[2], Period(row[3])))
    return "none"


async def _current_period(q: Reader, guild_id: int, scope: str, target_id: int, config: QuotaConfig) -> str:
    for row in await q.fetchall(_LIMITS, (guild_id,)):
        if row[0] == scope and int(row[1]) == target_id:
            return str(row[3])
    return config.default_limit.period.value
