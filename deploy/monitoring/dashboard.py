"""Ferry's Grafana dashboard, described here and written to dashboard.json beside this file:

    python3 deploy/monitoring/dashboard.py

The JSON is generated, never edited: review changes here. tests/unit/monitoring checks that
the committed JSON is this script's output and that every query names only metrics Ferry
exports, with their real labels. Only the standard library: it runs anywhere.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("dashboard.json")
UID = "ferry-overview"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24  # Grafana's grid
HEIGHT = 8
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    width: int = 8


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _rate(series: str, by: str = "") -> str:
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({series}[{RATE}]))"


def _quantiles(histogram: str, *, by: str = "") -> tuple[Query, ...]:
    labels = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return tuple(
        Query(f"histogram_quantile({q}, sum by ({labels}) "
              f"(rate({histogram}_bucket[{RATE}])))", f"p{round(q * 100)}{suffix}")
        for q in (0.5, 0.99))


ROWS = (
    Row("Receiver (ferry serve webhooks)", (
        Panel("Receivers up",
              "Receiver replicas Prometheus reaches (the base runs 2).",
              (Query('sum(up{job="ferry-webhooks"})', "up"),), kind="stat", width=4),
        Panel("Deliveries by outcome",
              "Webhook deliveries per second, by the receiver's outcome (docs/webhooks.md).",
              (Query(_rate("ferry_webhook_events_total", "outcome"), "{{outcome}}"),),
              unit="reqps", width=10),
        Panel("Failed deliveries",
              "Deliveries Ferry could not handle: forge or Kubernetes API failures, missing "
              "credentials, timeouts, rejected signatures.",
              (Query(_rate('ferry_webhook_events_total{outcome=~"forge-error|unavailable|'
                           'kubernetes-refused|timeout|no-credentials|unauthorized"}',
                           "forge, outcome"), "{{forge}} {{outcome}}"),),
              unit="reqps", width=10),
        Panel("Delivery duration",
              "From the request to the answer, body reading included.",
              _quantiles("ferry_webhook_duration_seconds"), unit="s"),
        Panel("Runs created",
              "PipelineRuns created per second (redeliveries of an existing run excluded).",
              (Query(_rate("ferry_pipeline_runs_created_total", "forge"), "{{forge}}"),),
              unit="ops"),
        Panel("Repository status writes",
              "Writes of Repositories' status.lastEvent, by result.",
              (Query(_rate("ferry_repository_status_writes_total", "result"), "{{result}}"),),
              unit="ops"),
    )),
    Row("Controller (ferry serve controller)", (
        Panel("Controllers up",
              "Controller replicas Prometheus reaches (the base runs 2: a leader, a standby).",
              (Query('sum(up{job="ferry-controller-metrics"})', "up"),), kind="stat", width=4),
        Panel("Leader",
              "Replicas holding the Lease: 1 is healthy; 0 means nothing reports statuses.",
              (Query("sum(ferry_controller_leader)", "leaders"),), kind="stat", width=4),
        Panel("Queue",
              "Runs with events waiting or being handled, on the leader.",
              (Query("max(ferry_controller_queue_depth)", "runs"),), kind="stat", width=4),
        Panel("Reports by outcome",
              "Statuses sent to forges per second: acknowledged or rejected.",
              (Query(_rate("ferry_controller_reports_total", "forge, outcome"),
                     "{{forge}} {{outcome}}"),),
              unit="ops", width=12),
        Panel("Report latency",
              "From the watch delivering a run's change to the forge's acknowledgement.",
              _quantiles("ferry_controller_report_latency_seconds"), unit="s"),
        Panel("Forge retries and rejections",
              "Forge calls retried after a temporary failure, and refused for good, by "
              "HTTP status (or error class).",
              (Query(_rate("ferry_controller_report_retries_total", "forge, status"),
                     "retry {{forge}} {{status}}"),
               Query(_rate("ferry_controller_report_rejections_total", "forge, status"),
                     "rejected {{forge}} {{status}}")),
              unit="ops"),
        Panel("Reports in doubt",
              "Reports a killed controller may have sent: re-sent without a check, or found "
              "on the forge and acknowledged without sending.",
              (Query(f"sum(increase(ferry_controller_reports_in_doubt_total[{RATE}]))",
                     "re-sent"),
               Query(f"sum(increase(ferry_controller_reports_recovered_total[{RATE}]))",
                     "found on the forge"))),
        Panel("Housekeeping",
              "Pending runs admitted, old runs pruned and watch restarts, per second.",
              (Query(_rate("ferry_controller_runs_admitted_total"), "admitted"),
               Query(_rate("ferry_controller_runs_pruned_total"), "pruned"),
               Query(_rate("ferry_controller_watch_restarts_total"), "watch restarts")),
              unit="ops", width=16),
        Panel("Runs refused",
              "Runs the controller does not report because the receiver did not bind them to "
              "their Repository (hand-made or edited runs), by reason.",
              (Query(f"sum by (reason) (increase(ferry_controller_runs_refused_total[{RATE}]))",
                     "{{reason}}"),)),
    )),
    Row("Log archive", (
        Panel("Steps waiting for the archive",
              "Finished steps whose logs are not archived yet.",
              (Query("max(ferry_archive_pending_steps)", "steps"),), width=6),
        Panel("Archive failures",
              "Failed writes of a step's log to the archive (each is retried).",
              (Query(_rate("ferry_archive_failures_total"), "failures"),),
              unit="ops", width=6),
        Panel("Step logs archived",
              "Step logs put in the archive per second: archived, or lost (no log to read).",
              (Query(_rate("ferry_controller_step_logs_total", "outcome"), "{{outcome}}"),),
              unit="ops", width=6),
        Panel("Step end to archived (p90)",
              "From a step's end (its container's finishedAt) to its log in the archive.",
              (Query("histogram_quantile(0.9, sum by (le) (rate("
                     f"ferry_controller_archive_delay_seconds_bucket[{RATE}])))", "p90"),),
              unit="s", width=6),
    )),
)


def _panel(panel: Panel, *, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [{"datasource": DATASOURCE, "expr": query.expr, "legendFormat": query.legend,
                "refId": chr(ord("A") + index)}
               for index, query in enumerate(panel.queries)]
    options: dict[str, Any] = (
        {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
         "colorMode": "value", "graphMode": "area"}
        if panel.kind == "stat" else
        {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
         "tooltip": {"mode": "multi", "sort": "desc"}})
    return {
        "id": panel_id, "type": panel.kind, "title": panel.title,
        "description": panel.description, "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": options, "targets": targets,
    }


def dashboard() -> dict[str, Any]:
    """The dashboard's JSON model: rows one under another, each row's panels left to right."""
    panels: list[dict[str, Any]] = []
    y = 0
    for row in ROWS:
        panels.append({"id": len(panels) + 1, "type": "row", "title": row.title,
                       "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y}})
        y += 1
        x = 0
        for panel in row.panels:
            if x + panel.width > WIDTH:
                x, y = 0, y + HEIGHT
            panels.append(_panel(panel, panel_id=len(panels) + 1, x=x, y=y))
            x += panel.width
        y += HEIGHT
    return {
        "uid": UID, "title": "Ferry", "tags": ["ferry", "ci"],
        "description": "Ferry's receiver, controller and log archive (deploy/monitoring/).",
        "editable": False, "graphTooltip": 1, "refresh": "30s", "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"}, "timezone": "browser",
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1,
        }]},
        "annotations": {"list": []}, "links": [],
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
