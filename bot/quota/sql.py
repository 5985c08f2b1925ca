"""The quota SQL: constant statements with bound parameters, in the subset SQLite and PostgreSQL both accept."""

from __future__ import annotations

_LIMITS = "SELECT scope, target_id, credits, period FROM quota_limits WHERE guild_id = ?"
_SET_LIMIT = """
INSERT INTO quota_limits (guild_id, scope, target_id, credits, period) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (guild_id, scope, target_id) DO UPDATE SET credits = excluded.credits, period = excluded.period
"""
_CLEAR_LIMIT = "DELETE FROM quota_limits WHERE guild_id = ? AND scope = ? AND target_id = ?"
_COSTS = "SELECT cost_key, credits FROM quota_costs WHERE guild_id = ?"
_SET_COST = """
INSERT INTO quota_costs (guild_id, cost_key, credits) VALUES (?, ?, ?)
ON CONFLICT (guild_id, cost_key) DO UPDATE SET credits = excluded.credits
"""
# `period_start` holds when a charge was made (a refund or reset carries the time it counts at), so usage is a
# window of time whatever period type applied when each credit was spent.
_USED = """
SELECT COALESCE(SUM(period_credits), 0) FROM quota_ledger WHERE guild_id = ? AND user_id = ? AND period_start >= ?
"""
_BONUS = """
SELECT COALESCE(-SUM(bonus_credits), 0) FROM quota_ledger WHERE guild_id = ? AND user_id = ? AND bonus_credits != 0
"""
_LEDGER = """
INSERT INTO quota_ledger (guild_id, user_id, job_id, kind, period_start, period_credits, bonus_credits, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_CHARGE_OF_JOB = """
SELECT guild_id, user_id, period_start, period_credits, bonus_credits, id FROM quota_ledger
WHERE job_id = ? AND kind = 'charge'
"""
_RESET_SINCE = """
SELECT 1 FROM quota_ledger
WHERE guild_id = ? AND user_id = ? AND period_start >= ? AND kind = 'reset' AND id > ? LIMIT 1
"""
_REFUND = """
INSERT INTO quota_ledger
    (guild_id, user_id, job_id, kind, period_start, period_credits, bonus_credits, created_at)
VALUES (?, ?, ?, 'refund', ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""
# A member's standing for a new job, in one statement (one round trip inside the write transaction).
_STANDING = """
SELECT
    (SELECT COUNT(*) FROM jobs WHERE user_id = :user AND state IN ('preparing', 'queued', 'submitted', 'running')),
    (SELECT COALESCE(SUM(period_credits), 0) FROM quota_ledger
     WHERE guild_id = :guild AND user_id = :user AND period_start >= :start),
    (SELECT COALESCE(-SUM(bonus_credits), 0) FROM quota_ledger
     WHERE guild_id = :guild AND user_id = :user AND bonus_credits != 0)
"""
_RECENT_JOBS = """
SELECT j.id, j.model, j.cost, j.state, j.created_at, r.id IS NOT NULL AS refunded, j.provider_cost
FROM jobs j LEFT JOIN quota_ledger r ON r.job_id = j.id AND r.kind = 'refund'
WHERE COALESCE(j.guild_id, 0) = ? AND j.user_id = ? ORDER BY j.id DESC LIMIT ?
"""
# Grouped by `+user_id` so that the planner reads only this period's rows (quota_ledger_window) rather than
# walking the guild's whole history in user order.
_TOP = """
SELECT +user_id, SUM(period_credits) FROM quota_ledger
WHERE guild_id = ? AND period_start >= ? GROUP BY +user_id HAVING SUM(period_credits) > 0
ORDER BY SUM(period_credits) DESC LIMIT ?
"""
_AUDIT = """
INSERT INTO quota_audit (guild_id, actor_id, action, target, old_value, new_value, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_RECENT_AUDIT = """
SELECT actor_id, action, target, old_value, new_value, created_at FROM quota_audit
WHERE guild_id = ? ORDER BY id DESC LIMIT ?
"""
