"""The statements on the bot's hot paths, with sample parameters, for the query-plan test and the benchmark.

Each is imported from the module that runs it, so the test and the benchmark check what the bot executes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.jobs import store
from bot.quota import sql as quota
from bot.quota.policy import Period, period_start
from tests.history import BIG_GUILD, History


@dataclass(frozen=True)
class Sample:
    """Parameter values taken from a built history: a heavy user in the big guild, an open and a closed job."""

    user_id: int
    guild_id: int
    open_job: int
    closed_job: int
    last_job: int
    today: float
    now: float
    owner: str = "bench-host:1:abcd"

    @classmethod
    def of(cls, history: History) -> Sample:
        # User 2 is one of the heavy users (see tests/history.py) and, being even, in the big guild.
        today = period_start(Period.DAY, datetime.fromtimestamp(history.now, UTC)).timestamp()
        return cls(2, BIG_GUILD, history.first_open, history.first_open // 2, history.jobs, today, history.now)


Params = tuple[Any, ...] | dict[str, Any]


@dataclass(frozen=True)
class Hot:
    """A hot statement: its SQL, parameters from a sample, and what its plan must show beyond using indexes."""

    sql: str
    params: Callable[[Sample], Params]
    ordered: bool = False  # its ORDER BY must come from an index, not a sort of everything that matched
    bounded_by: str | None = None  # a constraint the index search must apply (not just the leading column)


def _hot_query(name: str) -> Callable[[Sample], Params]:
    sample_params = {
        "claimable": lambda s: (s.now, s.now, 1000),
        "queue_position": lambda s: (s.last_job,),
        "user_queue_position": lambda s: (s.user_id, s.last_job),
        "by_result_message": lambda s: (10000001 + 2 * s.closed_job,),
        "recent_durations": lambda s: (5000,),
        "durations_since": lambda s: (s.today, 5000),
    }
    return sample_params[name]


HOT: dict[str, Hot] = {
    **{
        name: Hot(sql, _hot_query(name), ordered=name in ("claimable", "recent_durations", "durations_since"))
        for name, (sql, _) in store.HOT_QUERIES.items()
    },
    # Inside the creation transaction: capacity, usage, bonus.
    "standing (capacity, usage, bonus)": Hot(
        quota._STANDING,
        lambda s: {"user": s.user_id, "guild": s.guild_id, "start": s.today},
        bounded_by="user_id=? AND period_start>?",
    ),
    "used": Hot(quota._USED, lambda s: (s.guild_id, s.user_id, s.today), bounded_by="user_id=? AND period_start>?"),
    "bonus": Hot(quota._BONUS, lambda s: (s.guild_id, s.user_id)),
    # Refunds, inside the settle transaction.
    "charge_of_job": Hot(quota._CHARGE_OF_JOB, lambda s: (s.closed_job,)),
    "reset_since": Hot(
        quota._RESET_SINCE, lambda s: (s.guild_id, s.user_id, s.today, 0), bounded_by="user_id=? AND period_start>?"
    ),
    # /usage and /quota top.
    "recent_jobs (/usage)": Hot(quota._RECENT_JOBS, lambda s: (s.guild_id, s.user_id, 5), ordered=True),
    "top (/quota top)": Hot(
        quota._TOP, lambda s: (s.guild_id, s.today, 10), bounded_by="guild_id=? AND period_start>?"
    ),
    # Leases.
    "claim": Hot(store._CLAIM, lambda s: {"owner": s.owner, "expires": s.now + 30, "id": s.open_job, "now": s.now}),
    "renew": Hot(store._RENEW, lambda s: (s.now + 30, s.owner)),
    "release_all": Hot(store._RELEASE_ALL, lambda s: (s.owner,)),
    # Startup: drop the input bytes of every ended job.
    "sweep_input_bytes": Hot(store._SWEEP_INPUT_BYTES, lambda s: ()),
}


PARTIAL_INDEXES = """
SELECT il.name FROM sqlite_master m, pragma_index_list(m.name) il WHERE m.type = 'table' AND il.partial
"""


def plan_problems(hot: Hot, plan: list[str], partial_indexes: set[str]) -> list[str]:
    """What is wrong with an EXPLAIN QUERY PLAN (its detail lines) for a hot statement; empty if nothing.

    A SCAN reads a whole table or index, so it is allowed only over a partial index (which holds just the rows
    that matter: open jobs, inputs with bytes). Searches are fine; a sort of everything matched is not where
    the statement has a LIMIT on an ORDER BY, and `bounded_by` names a range the search must use.
    """
    problems = []
    for line in plan:
        if line.startswith("SCAN ") and line != "SCAN CONSTANT ROW":  # a SELECT without FROM reads no table
            words = line.split()
            index = words[-1] if "INDEX" in words else None
            if index not in partial_indexes:
                problems.append(f"scans: {line}")
        if hot.ordered and line == "USE TEMP B-TREE FOR ORDER BY":
            problems.append("sorts every matching row for its ORDER BY")
    if hot.bounded_by and not any(line.startswith("SEARCH ") and hot.bounded_by in line for line in plan):
        problems.append(f"its search is not bounded by {hot.bounded_by}")
    return problems
