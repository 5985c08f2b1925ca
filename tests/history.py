"""A synthetic job history for query-plan tests and benchmarks: jobs, their ledger rows and edit inputs.

Built with recursive CTEs in one transaction (a million jobs take a few seconds). Deterministic: the same
arguments give the same rows. The mix: most jobs closed and succeeded, some failed / cancelled / timed out
(refunded), a tail of open jobs (mostly queued, some submitted, running or preparing), one edit in five,
users spread over a few guilds (half of them in one big guild, a few in DMs), and a few heavy users.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.db import Database

DAY = 86400.0
BIG_GUILD = 1001


@dataclass(frozen=True)
class History:
    jobs: int = 5000
    users: int = 500
    guilds: int = 50
    open_jobs: int = 50
    days: float = 365.0
    now: float = 0.0  # 0: the time of building

    @property
    def first_open(self) -> int:
        return self.jobs - self.open_jobs + 1


# h: a per-row hash; u: the user (one job in twenty goes to one of the first 1% of users: heavy users).
_JOBS = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :jobs),
h AS (SELECT i, (i * 2654435761) % 4294967296 AS h FROM n),
u AS (
    SELECT i, h, CASE WHEN i % 20 = 0 THEN 1 + h % MAX(1, :users / 100) ELSE 1 + h % :users END AS user_id FROM h
),
r AS (
    SELECT i, h, user_id,
        CASE WHEN user_id % 97 = 0 THEN NULL
             WHEN user_id % 2 = 0 THEN :big_guild
             ELSE :big_guild + 1 + user_id % (:guilds - 1) END AS guild_id,
        CASE WHEN i >= :first_open THEN
                CASE i % 10 WHEN 0 THEN 'submitted' WHEN 1 THEN 'running' WHEN 2 THEN 'preparing' ELSE 'queued' END
             WHEN h % 100 < 90 THEN 'succeeded' WHEN h % 100 < 96 THEN 'failed'
             WHEN h % 100 < 98 THEN 'cancelled' ELSE 'timed_out' END AS state,
        CASE WHEN i >= :first_open THEN :now - (:jobs - i) * 0.5
             ELSE :now - :days * 86400.0 + i * (:days * 86400.0 - 3600.0) / :jobs END AS created_at,
        CASE WHEN i % 5 = 0 THEN 'edit' ELSE 'generate' END AS kind,
        1 + (h / 7) % 4 AS cost
    FROM u
)
INSERT INTO jobs (id, kind, state, provider, model, params, prompt, duration_key, user_id, guild_id, channel_id,
                  upload_limit, status_message_id, provider_task_id, submit_started_at, submitted_at, deadline_at,
                  finished_at, duration_ms, result_urls, error_code, delivered_at, result_message_id, created_at,
                  cost, route, idempotency_key, lease_owner, lease_expires_at, closed_at)
SELECT i, kind, state, 'hub', CASE WHEN kind = 'edit' THEN 'nano-banana-2-edit' ELSE 'nano-banana-2' END,
    '{"num_images": 1}', 'a lighthouse in a storm, oil on canvas', 'hub:nano-banana-2:1K', user_id, guild_id,
    5000 + COALESCE(guild_id, 0) % 1000, 10485760, 10000000 + 2 * i,
    CASE WHEN state NOT IN ('queued', 'preparing') THEN 'task-' || i END,
    CASE WHEN state NOT IN ('queued', 'preparing') THEN created_at + 0.2 END,
    CASE WHEN state NOT IN ('queued', 'preparing') THEN created_at + 0.3 END,
    CASE WHEN state NOT IN ('queued', 'preparing') THEN created_at + 600 END,
    CASE WHEN i < :first_open THEN created_at + 20 + h % 40 END,
    CASE WHEN state = 'succeeded' THEN 20000 + h % 40000 END,
    CASE WHEN state = 'succeeded' THEN '["https://cdn.example/' || i || '.png"]' END,
    CASE WHEN state IN ('failed', 'timed_out') THEN 'provider_error'
         WHEN state = 'cancelled' THEN 'user_cancelled' END,
    CASE WHEN state = 'succeeded' THEN created_at + 61 + h % 40 END,
    CASE WHEN state = 'succeeded' THEN 10000001 + 2 * i END,
    created_at, cost, '["hub"]', lower(hex(randomblob(16))),
    CASE WHEN i >= :first_open AND h % 3 = 0 THEN 'other-host:1:abcd' END,
    CASE WHEN i >= :first_open AND h % 3 = 0 THEN :now + 30 END,
    CASE WHEN i < :first_open THEN created_at + 62 + h % 40 END
FROM r
"""

# One charge per job (from the period's credits; every 25th from bonus credits), a refund per failed,
# cancelled or timed-out job, then grants and resets for a few users.
_LEDGER = """
INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, period_start, period_credits, bonus_credits, created_at)
SELECT COALESCE(guild_id, 0), user_id, id, 'charge', created_at,
    CASE WHEN id % 25 = 0 THEN 0 ELSE cost END, CASE WHEN id % 25 = 0 THEN cost ELSE 0 END, created_at
FROM jobs ORDER BY id
"""
_REFUNDS = """
INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, period_start, period_credits, bonus_credits, created_at)
SELECT COALESCE(guild_id, 0), user_id, id, 'refund', created_at,
    CASE WHEN id % 25 = 0 THEN 0 ELSE -cost END, CASE WHEN id % 25 = 0 THEN -cost ELSE 0 END, finished_at
FROM jobs WHERE state IN ('failed', 'cancelled', 'timed_out') ORDER BY id
"""
_GRANTS_AND_RESETS = """
INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, period_start, period_credits, bonus_credits, created_at)
SELECT COALESCE(guild_id, 0), user_id, NULL, CASE WHEN id % 2 = 0 THEN 'grant' ELSE 'reset' END, created_at - 1,
    CASE WHEN id % 2 = 0 THEN 0 ELSE -3 END, CASE WHEN id % 2 = 0 THEN -50 ELSE 0 END, created_at - 1
FROM jobs WHERE id % 200 = 7 ORDER BY id
"""
# An input row per edit (bytes dropped once it ended); the open edits still hold theirs.
_INPUTS = """
INSERT INTO job_inputs (job_id, position, role, filename, content_type, data)
SELECT id, 0, 'image', 'input.png', 'image/png', CASE WHEN closed_at IS NULL THEN zeroblob(2048) END
FROM jobs WHERE kind = 'edit' ORDER BY id
"""

_INDEXES = """
SELECT sql, name FROM sqlite_master
WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('jobs', 'quota_ledger', 'job_inputs')
"""


async def fill(db: Database, history: History = History()) -> History:
    """Write the history into a migrated, empty database (no ANALYZE: the bot never runs it)."""
    now = history.now or time.time()
    params = {
        "jobs": history.jobs,
        "users": history.users,
        "guilds": history.guilds,
        "big_guild": BIG_GUILD,
        "first_open": history.first_open,
        "days": history.days,
        "now": now,
    }
    async with db.transaction() as tx:
        # Indexes built after the rows (a sort) rather than row by row: the schema ends up the same.
        indexes = [str(r[0]) for r in await tx.fetchall(_INDEXES)]
        for name in [str(r[1]) for r in await tx.fetchall(_INDEXES)]:
            await tx.execute(f'DROP INDEX "{name}"')
        await tx.execute(_JOBS, params)
        for statement in (_LEDGER, _REFUNDS, _GRANTS_AND_RESETS, _INPUTS, *indexes):
            await tx.execute(statement)
    return History(history.jobs, history.users, history.guilds, history.open_jobs, history.days, now)
