"""Prometheus metrics on a per-instance registry (no global state). The metric names are a public contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
JOB_STATES = ("succeeded", "failed", "timed_out", "cancelled")
PROVIDER_OUTCOMES = ("ok", "rejected", "unavailable", "auth", "unknown")
# Task ready at the provider -> result posted in Discord: sub-second is the goal, minutes is an incident.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# The job counts are read from the database at scrape time, so they are right with several processes.
# A queued or running job is never closed yet, so the partial index jobs_open bounds the scan to open jobs:
# 0.2 ms at 200,000 jobs, where two plain COUNTs over `state` scan the table (2 x 25 ms).
COUNT_JOBS = (
    "SELECT COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN state IN ('submitted', 'running') THEN 1 ELSE 0 END), 0) "
    "FROM jobs WHERE closed_at IS NULL"
)

Counts = Callable[[], Awaitable[tuple[int, int]]]


class Metrics:
    """Every metric the bot exports. Build one per process and pass it to whatever counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs_total = Counter(
            "imagebot_jobs", "Jobs that reached a final state, by state", ["state"], registry=self.registry
        )
        self.job_added_latency = Histogram(
            "imagebot_job_added_latency_seconds",
            "Seconds from the task being ready at the image service to the result being posted",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.provider_requests = Counter(
            "imagebot_provider_requests",
            "API calls to image services, by provider and outcome (ok, rejected, unavailable, auth, unknown)",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self._credits = Counter("imagebot_credits_charged", "Credits kept for delivered images", registry=self.registry)
        self.jobs_active = Gauge(
            "imagebot_jobs_active", "Jobs at an image service (submitted or running)", registry=self.registry
        )
        self.jobs_queued = Gauge("imagebot_jobs_queued", "Jobs waiting for their turn", registry=self.registry)
        for state in JOB_STATES:
            self.jobs_total.labels(state=state)

    def job_ended(self, state: str) -> None:
        """A job reached its final state (succeeded, failed, timed_out or cancelled). Call once per job."""
        self.jobs_total.labels(state=state).inc()

    def result_posted(self, added_seconds: float) -> None:
        """A result message was posted `added_seconds` after the provider's task was ready."""
        self.job_added_latency.observe(max(0.0, added_seconds))

    def credits_charged(self, credits: int) -> None:
        """`credits` were kept for a delivered result (not refunded). Call once per delivered job."""
        if credits > 0:
            self._credits.inc(credits)

    def provider_request(self, provider: str, outcome: str) -> None:
        """One API call to `provider` ended with `outcome` (one of PROVIDER_OUTCOMES)."""
        self.provider_requests.labels(provider=provider, outcome=outcome).inc()

    async def render(self, counts: Counts) -> bytes:
        """The exposition text, with the job gauges read fresh (`counts` returns queued, active)."""
        queued, active = await counts()
        self.jobs_queued.set(queued)
        self.jobs_active.set(active)
        return generate_latest(self.registry)
