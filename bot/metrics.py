"""Prometheus metrics of one process (served at /metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from handlers.sweep import JOBS, ItemFailure


@dataclass
class Metrics:
    """The process's counters, in their own registry (tests make as many as they like)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.updates = Counter(
            "ktn_updates_total", "Inbound messages handled", ["channel", "result"], registry=r
        )
        self.handling_seconds = Histogram(
            "ktn_handling_seconds",
            "Time to handle one inbound message",
            ["channel"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.sends = Counter(
            "ktn_outbox_sends_total",
            "Outbox send attempts by result",
            ["channel", "result"],
            registry=r,
        )
        self.rate_limited = Counter(
            "ktn_rate_limited_total",
            "429 / retry_after answers from a channel",
            ["channel"],
            registry=r,
        )
        self.outbox_unexpected = Counter(
            "ktn_outbox_unexpected_failures_total",
            "Outbox rows given up because their data or their send raised an unexpected error",
            ["channel"],
            registry=r,
        )
        self.outbox_depth = Gauge("ktn_outbox_depth", "Outbox rows waiting to be sent", registry=r)
        self.escalations = Counter(
            "ktn_escalations_total",
            "Escalation steps taken, by level (1: the parent area, 2: the one above, ...)",
            ["level"],
            registry=r,
        )
        self.claims_offered_back = Counter(
            "ktn_claims_offered_back_total",
            "Claimed reports with no update in time, offered back to the officers",
            registry=r,
        )
        self.leader = Gauge(
            "ktn_scheduler_leader", "1 when this process runs the schedules", registry=r
        )
        self.job_item_failures = Counter(
            "ktn_job_item_failures_total",
            "Items a periodic job could not handle (rolled back alone; the others went on)",
            ["job"],
            registry=r,
        )
        self.retention_purged = Counter(
            "ktn_retention_purged_total",
            "Rows forgotten (deleted or stripped) by retention, by kind of data",
            ["kind"],
            registry=r,
        )
        for job in JOBS:  # every job's series from the start, at 0, for rate() and alerts
            self.job_item_failures.labels(job=job)

    def item_failed(self, failure: ItemFailure) -> None:
        """Count one item a periodic job could not handle (``handlers.sweep``)."""
        self.job_item_failures.labels(job=failure.job).inc()
