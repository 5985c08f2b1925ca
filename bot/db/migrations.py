"""Numbered schema migrations; `PRAGMA user_version` records how many have been applied."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs are the source of truth for all scheduled work.
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('generate', 'edit')),
        state TEXT NOT NULL CHECK (state IN ('queued', 'submitted', 'running', 'succeeded', 'failed',
                                              'timed_out', 'cancelled')),
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        params TEXT NOT NULL,
        prompt TEXT NOT NULL,
        duration_key TEXT NOT NULL,
        user_id INTEGER NOT NULL,
        guild_id INTEGER,
        channel_id INTEGER NOT NULL,
        upload_limit INTEGER NOT NULL,
        status_message_id INTEGER,
        provider_task_id TEXT,
        submit_started_at REAL,
        submitted_at REAL,
        deadline_at REAL,
        finished_at REAL,
        duration_ms INTEGER,
        result_urls TEXT,
        error_code TEXT,
        error_message TEXT,
        delivery_started_at REAL,
        delivered_at REAL,
        result_message_id INTEGER,
        delivery_error TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX jobs_undelivered ON jobs (id) WHERE delivered_at IS NULL;
    CREATE INDEX jobs_durations ON jobs (finished_at) WHERE state = 'succeeded' AND duration_ms IS NOT NULL;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: quotas. The ledger is append-only; usage is a sum, and a job is refunded at most once.
    """
    ALTER TABLE jobs ADD COLUMN cost INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE quota_limits (
        guild_id INTEGER NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('user', 'role', 'guild')),
        target_id INTEGER NOT NULL,
        credits INTEGER,
        period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
        PRIMARY KEY (guild_id, scope, target_id)
    );
    CREATE TABLE quota_costs (
        guild_id INTEGER NOT NULL,
        cost_key TEXT NOT NULL,
        credits INTEGER NOT NULL CHECK (credits >= 0),
        PRIMARY KEY (guild_id, cost_key)
    );
    CREATE TABLE quota_ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        job_id INTEGER REFERENCES jobs (id),
        kind TEXT NOT NULL CHECK (kind IN ('charge', 'refund', 'grant', 'reset')),
        period_start REAL NOT NULL,
        period_credits INTEGER NOT NULL,
        bonus_credits INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX quota_ledger_once ON quota_ledger (job_id, kind) WHERE job_id IS NOT NULL;
    CREATE INDEX quota_ledger_user ON quota_ledger (guild_id, user_id, period_start);
    CREATE TABLE quota_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id INTEGER NOT NULL,
        actor_id INTEGER NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        old_value TEXT,
        new_value TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX quota_audit_guild ON quota_audit (guild_id, id);
    """,
    # 3: edits. Input images wait here until the status message hosts them, then their bytes are dropped.
    """
    ALTER TABLE jobs ADD COLUMN reply_to_message_id INTEGER;
    CREATE TABLE job_inputs (
        job_id INTEGER NOT NULL REFERENCES jobs (id),
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('image', 'mask')),
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        data BLOB,
        PRIMARY KEY (job_id, position)
    );
    CREATE INDEX jobs_result_message ON jobs (result_message_id);
    """,
    # 4: per-server settings (e.g. whether everyone may use the buttons on results).
    """
    CREATE TABLE guild_settings (
        guild_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (guild_id, key)
    );
    """,
    # 5: several providers. A job keeps its failover route and the cost its provider reported.
    """
    ALTER TABLE jobs ADD COLUMN route TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN provider_cost REAL;
    """,
)
