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
)
