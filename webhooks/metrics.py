"""The receiver's Prometheus metrics, in a registry of its own (one per app, never global).

Conventions as in ci/controller/metrics.py; every metric is listed in docs/webhooks.md.
Label values come from small sets: the forge kind (or `unknown`), the event name of a verified
delivery (the forge's own, never set before the signature is checked), and the outcome words
of webhooks/handling.py, receiver.py and answers.py (the refusals table).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Deliveries take milliseconds (a redelivery) to seconds (forge calls and run creation).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "ferry_webhook_events_total",
            "Deliveries received, by forge, event and outcome.",
            ["forge", "event", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ferry_webhook_duration_seconds",
            "Seconds from the request to the answer, body reading included.",
            ["forge"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.runs_created = Counter(
            "ferry_pipeline_runs_created_total",
            "Runs created (redeliveries of an existing run are not counted).",
            ["forge"],
            registry=self.registry,
        )

        self.status_writes = Counter(
            "ferry_repository_status_writes_total",
            "Writes of a Repository's status.lastEvent, by result (written, failed).",
            ["result"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
