"""The controller's Prometheus metrics, in a registry the app creates (never the global one,
so tests and two controllers in one process do not share counters).

Names follow Prometheus' conventions: `ferry_` first, the unit last (`_seconds`), `_total` on
counters, label values from small fixed sets (a forge kind, an outcome word, an HTTP status or
an error class). Every metric here is listed with its help text in docs/controller.md, and
tests/unit/monitoring checks both, and that the dashboard and alerts in deploy/monitoring/ ask
only for what is exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

# Seconds: from a status change seen on the API server to the forge's acknowledgement.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _CountedElsewhere(Collector):
    """A counter whose value another object keeps (the watchers count their own restarts):
    read when scraped, 0 until a source is set."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._documentation = documentation
        self._count: Callable[[], float] = lambda: 0.0

    def count_from(self, count: Callable[[], float]) -> None:
        self._count = count

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._count())


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.reports = Counter(
            "ferry_controller_reports_total",
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
            "ferry_controller_report_retries_total",
            "Forge calls retried after a temporary failure, by forge and status.",
            ["forge", "status"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "ferry_controller_report_rejections_total",
            "Forge calls refused for good (4xx other than 429), by forge and status.",
            ["forge", "status"],
            registry=self.registry,
        )
        self.doubts = Counter(
            "ferry_controller_reports_in_doubt_total",
            "Reports re-sent because a killed controller may already have delivered them and "
            "the forge cannot be asked (check runs, or reading back refused).",
            registry=self.registry,
        )
        self.recovered = Counter(
            "ferry_controller_reports_recovered_total",
            "Reports in doubt that the forge already showed: acknowledged without sending.",
            ["forge"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "ferry_controller_queue_depth",
            "Runs with events waiting or being handled.",
            registry=self.registry,
        )
        self.watch_restarts = _CountedElsewhere(
            "ferry_controller_watch_restarts",
            "Reconnects and relists of the controller's watches since it started.",
        )
        self.registry.register(self.watch_restarts)
        self.admitted = Counter(
            "ferry_controller_runs_admitted_total",
            "Pending runs started under their concurrency limit.",
            registry=self.registry,
        )
        self.pruned = Counter(
            "ferry_controller_runs_pruned_total",
            "Finished runs deleted beyond their Repository's keepRuns.",
            registry=self.registry,
        )
        self.refused = Counter(
            "ferry_controller_runs_refused",
            "Runs not reported because their binding to a Repository is missing or invalid "
            "(docs/controller.md), by reason; each run counted once per reason.",
            ["reason"],
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
        # The step-log archive (ci/archive/): what the alert "archive falling behind" and the
        # dashboard read.
        self.archive_pending = Gauge(
            "ferry_archive_pending_steps",
            "Finished steps whose logs are not yet in the archive.",
            registry=self.registry,
        )
        self.archive_failures = Counter(
            "ferry_archive_failures_total",
            "Attempts to write a step's log to the archive that failed (retried later).",
            registry=self.registry,
        )

    def watch_restarts_from(self, count: Callable[[], float]) -> None:
        self.watch_restarts.count_from(count)
