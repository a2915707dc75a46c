"""The controller's Prometheus metrics, in a registry the app creates (never the global one,
so tests and two controllers in one process do not share counters)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: from a status change seen on the API server to the forge's acknowledgement.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.reports = Counter(
            "ferry_controller_reports",
            "Statuses sent to forges, by forge and outcome (acknowledged, rejected).",
            ["forge", "outcome"],
            registry=self.registry,
        )
        self.report_latency = Histogram(
            "ferry_controller_report_latency_seconds",
            "From the watch delivering a status change to the forge acknowledging it.",
            ["forge"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "ferry_controller_report_retries",
            "Forge calls retried after a temporary failure, by forge and status.",
            ["forge", "status"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "ferry_controller_report_rejections",
            "Forge calls refused for good (4xx other than 429), by forge and status.",
            ["forge", "status"],
            registry=self.registry,
        )
        self.doubts = Counter(
            "ferry_controller_reports_in_doubt",
            "Reports re-sent because a killed controller may already have delivered them and "
            "the forge cannot be asked (check runs, or reading back refused).",
            registry=self.registry,
        )
        self.recovered = Counter(
            "ferry_controller_reports_recovered",
            "Reports in doubt that the forge already showed: acknowledged without sending.",
            ["forge"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "ferry_controller_queue_depth",
            "Runs with events waiting or being handled.",
            registry=self.registry,
        )
        self.watch_restarts = Gauge(
            "ferry_controller_watch_restarts",
            "Reconnects and relists of the controller's watches since it started.",
            registry=self.registry,
        )
        self.admitted = Counter(
            "ferry_controller_runs_admitted",
            "Pending runs started under their concurrency limit.",
            registry=self.registry,
        )
        self.pruned = Counter(
            "ferry_controller_runs_pruned",
            "Finished runs deleted beyond their Repository's keepRuns.",
            registry=self.registry,
        )
        self.step_logs = Counter(
            "ferry_controller_step_logs",
            "Step logs put in the archive, by outcome (archived, lost: no log to read).",
            ["outcome"],
            registry=self.registry,
        )
        self.archive_delay = Histogram(
            "ferry_controller_archive_delay_seconds",
            "From a step's end (its container's finishedAt) to its log being archived.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.leader = Gauge(
            "ferry_controller_leader", "1 while this replica holds the Lease.",
            registry=self.registry,
        )

    def watch_restarts_from(self, count: Callable[[], float]) -> None:
        self.watch_restarts.set_function(count)
