"""Every hot statement uses an index: EXPLAIN QUERY PLAN on a real migrated database holding a job history.

No ANALYZE is run (the bot never runs it), so these are the plans the bot gets. The statements are imported
from the modules that run them (see tests/hot_statements.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import Database
from tests.history import History, fill
from tests.hot_statements import HOT, PARTIAL_INDEXES, Hot, Sample, plan_problems


@pytest.fixture
async def history_db(tmp_path: Path) -> AsyncIterator[tuple[Database, Sample]]:
    db = await Database.open(tmp_path / "history.db")
    history = await fill(db, History(jobs=5000, users=500, open_jobs=60))
    yield db, Sample.of(history)
    await db.close()


async def _problems(db: Database, hot: Hot, sample: Sample, sql: str | None = None) -> tuple[list[str], list[str]]:
    rows = await db.fetchall("EXPLAIN QUERY PLAN " + (sql or hot.sql), hot.params(sample))
    plan = [str(row[3]) for row in rows]
    partial = {str(row[0]) for row in await db.fetchall(PARTIAL_INDEXES)}
    return plan, plan_problems(hot, plan, partial)


@pytest.mark.parametrize("name", [pytest.param(name, id=name.split(" ")[0]) for name in HOT])
async def test_hot_statement_uses_an_index(history_db: tuple[Database, Sample], name: str) -> None:
    db, sample = history_db
    plan, problems = await _problems(db, HOT[name], sample)
    assert not problems, f"{name}: {problems}\nplan: {plan}"


async def test_the_checks_catch_bad_plans(history_db: tuple[Database, Sample]) -> None:
    """The checks themselves: a scan, a sort for a LIMIT and an unbounded search are each reported."""
    db, sample = history_db
    scan = Hot("SELECT COUNT(*) FROM jobs WHERE prompt = ?", lambda s: ("x",))
    sort = Hot("SELECT id FROM jobs WHERE user_id = ? ORDER BY created_at DESC LIMIT 5", lambda s: (1,), ordered=True)
    unbounded = Hot(
        "SELECT COUNT(*) FROM quota_ledger WHERE guild_id = ? AND created_at >= ?",
        lambda s: (1, 0.0),
        bounded_by="created_at>?",
    )
    assert (await _problems(db, scan, sample))[1] == ["scans: SCAN jobs"]
    assert (await _problems(db, sort, sample))[1] == ["sorts every matching row for its ORDER BY"]
    assert (await _problems(db, unbounded, sample))[1] == ["its search is not bounded by created_at>?"]
