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
    # 6: settle exactly once. A "preparing" state (the row exists before the acknowledgement), a random
    # idempotency key and the exact submit body, a lease (owner + expiry), the notice the status message must
    # end with, and when all chat work was done (closed). Rebuilt to widen the state CHECK.
    """
    CREATE TABLE jobs_v6 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('generate', 'edit')),
        state TEXT NOT NULL CHECK (state IN ('preparing', 'queued', 'submitted', 'running', 'succeeded', 'failed',
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
        created_at REAL NOT NULL,
        cost INTEGER NOT NULL DEFAULT 0,
        reply_to_message_id INTEGER,
        route TEXT NOT NULL DEFAULT '[]',
        provider_cost REAL,
        idempotency_key TEXT NOT NULL,
        submit_body TEXT,
        lease_owner TEXT,
        lease_expires_at REAL,
        notice TEXT,
        status_post_started_at REAL,
        delivery_attempts INTEGER NOT NULL DEFAULT 0,
        retry_at REAL,
        closed_at REAL
    );
    INSERT INTO jobs_v6 (id, kind, state, provider, model, params, prompt, duration_key, user_id, guild_id,
        channel_id, upload_limit, status_message_id, provider_task_id, submit_started_at, submitted_at, deadline_at,
        finished_at, duration_ms, result_urls, error_code, error_message, delivery_started_at, delivered_at,
        result_message_id, delivery_error, created_at, cost, reply_to_message_id, route, provider_cost,
        idempotency_key, closed_at)
    SELECT id, kind, state, provider, model, params, prompt, duration_key, user_id, guild_id,
        channel_id, upload_limit, status_message_id, provider_task_id, submit_started_at, submitted_at, deadline_at,
        finished_at, duration_ms, result_urls, error_code, error_message, delivery_started_at, delivered_at,
        result_message_id, delivery_error, created_at, cost, reply_to_message_id, route, provider_cost,
        lower(hex(randomblob(16))), delivered_at
    FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v6 RENAME TO jobs;
    CREATE INDEX jobs_open ON jobs (id) WHERE closed_at IS NULL;
    CREATE INDEX jobs_durations ON jobs (finished_at) WHERE state = 'succeeded' AND duration_ms IS NOT NULL;
    CREATE INDEX jobs_result_message ON jobs (result_message_id);
    CREATE INDEX jobs_user_state ON jobs (user_id, state, id);
    CREATE INDEX jobs_user_recent ON jobs (user_id, id);
    CREATE INDEX jobs_state ON jobs (state, id);
    CREATE INDEX jobs_lease_owner ON jobs (lease_owner) WHERE closed_at IS NULL;
    UPDATE job_inputs SET data = NULL
    WHERE data IS NOT NULL AND job_id IN (SELECT id FROM jobs WHERE state NOT IN ('queued', 'submitted', 'running'));
    CREATE INDEX job_inputs_with_data ON job_inputs (job_id) WHERE data IS NOT NULL;
    """,
    # 7: credits follow the time of the charge, whatever the period type: `period_start` now holds when the
    # charge was made (a refund carries its charge's time), so a period change keeps what was used. Bonus sums
    # read only rows that touch bonus credits.
    """
    UPDATE quota_ledger SET period_start = created_at WHERE kind IN ('charge', 'reset');
    UPDATE quota_ledger SET period_start = COALESCE(
        (SELECT c.created_at FROM quota_ledger c WHERE c.job_id = quota_ledger.job_id AND c.kind = 'charge'),
        period_start)
    WHERE kind = 'refund';
    CREATE INDEX quota_ledger_bonus ON quota_ledger (guild_id, user_id) WHERE bonus_credits != 0;
    """,
    # 8: indexes the query-plan test asks for. Learning durations at startup takes the latest succeeded jobs in
    # order (no sort of all of them); /quota top reads only the current period's ledger rows; a member's usage
    # stays on the member's own rows (covering, so the planner never prefers the period index for it).
    """
    DROP INDEX jobs_durations;
    CREATE INDEX jobs_durations ON jobs (state, finished_at, duration_key, duration_ms) WHERE duration_ms IS NOT NULL;
    CREATE INDEX quota_ledger_window ON quota_ledger (guild_id, period_start, user_id, period_credits);
    DROP INDEX quota_ledger_user;
    CREATE INDEX quota_ledger_user ON quota_ledger (guild_id, user_id, period_start, period_credits);
    """,
    # 9: the interaction token of the request that created a job (Discord honours it for 15 minutes), so a
    # process that takes the job over after a crash can still answer the member's "thinking…" message.
    # Cleared when the job closes.
    """
    ALTER TABLE jobs ADD COLUMN answer_token TEXT;
    """,
    # 10: the caps on jobs at the image services (per user and bot-wide) are counted in the database, so they
    # hold across processes: a job takes a slot (slot_at) before its submit and holds it until it ends.
    """
    ALTER TABLE jobs ADD COLUMN slot_at REAL;
    UPDATE jobs SET slot_at = submitted_at WHERE state IN ('submitted', 'running');
    CREATE INDEX jobs_slots ON jobs (user_id) WHERE slot_at IS NOT NULL AND state IN ('queued', 'submitted', 'running');
    """,
    # 11: when a finished task started processing (its last poll still waiting and its first one processing, ms
    # after submission), so a restarted process, and every other one, learns where starts pin finishes.
    """
    ALTER TABLE jobs ADD COLUMN start_low_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN start_high_ms INTEGER;
    DROP INDEX jobs_durations;
    CREATE INDEX jobs_durations ON jobs (state, finished_at, duration_key, duration_ms, start_low_ms, start_high_ms)
        WHERE duration_ms IS NOT NULL;
    """,
)
