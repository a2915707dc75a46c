"""Every metric Ferry exports follows Prometheus' naming conventions and is documented with
its exact help text, read from the components' own registries (tests/unit/monitoring/
exported.py)."""

from __future__ import annotations

import re
from pathlib import Path

from ci.controller.metrics import ControllerMetrics
from tests.unit.monitoring.exported import Exported, exported

ROOT = Path(__file__).resolve().parents[3]
DOCS = {"webhooks": ROOT / "docs" / "webhooks.md", "controller": ROOT / "docs" / "controller.md"}
# Every label, and why its values are a small fixed set (a label per repository, run, sha or
# delivery id would make a series per value: those go in logs, never in metrics).
BOUNDED_LABELS = {
    "forge": "a forge kind: github, gitea, gitlab, or unknown",
    "event": "the forge's event name, set only after the signature is verified",
    "outcome": "an outcome word of the receiver or the controller",
    "status": "an HTTP status, or the error's class when there was no answer",
    "result": "written or failed",
    "reason": "why a run was refused: the words of ci.kube.binding.Refusal",
}
UNITS = ("_seconds", "_bytes")
# Words that say a quantity has a unit, which must then end the name.
MEASURES = ("duration", "latency", "time", "age", "size", "delay")
ROW = re.compile(r"^\| `(?P<name>ferry_[a-z0-9_]+)` \| (?P<kind>\w+) \| (?P<labels>[^|]+) \| "
                 r"(?P<help>.+) \|$", re.MULTILINE)


def _row(metric: Exported) -> tuple[str, str, str, str]:
    labels = ", ".join(f"`{label}`" for label in sorted(metric.labels)) or "-"
    return metric.name, metric.kind, labels, metric.help


def test_both_components_export_metrics_and_each_has_a_help_text() -> None:
    metrics = exported()
    assert {m.component for m in metrics.values()} == {"webhooks", "controller"}
    for metric in metrics.values():
        assert metric.help.strip() and metric.help.endswith("."), metric
        assert metric.kind in {"counter", "gauge", "histogram"}, metric


def test_names_follow_prometheus_conventions() -> None:
    for name, metric in exported().items():
        assert re.fullmatch(r"ferry_[a-z][a-z0-9]*(_[a-z0-9]+)+", name), name
        # Counters end in _total; nothing else does (a gauge of a count is not a counter).
        assert name.endswith("_total") == (metric.kind == "counter"), name
        words = metric.family.split("_")
        if metric.kind == "histogram" or any(word in MEASURES for word in words):
            assert metric.family.endswith(UNITS), f"{name}: the unit ends the name"
        # The unit is in the name and base units only: no _milliseconds, _ms, _kb.
        assert not set(words) & {"milliseconds", "ms", "minutes", "kb", "mb", "percent"}, name


def test_label_names_come_from_the_bounded_set() -> None:
    for name, metric in exported().items():
        unknown = metric.labels - BOUNDED_LABELS.keys()
        assert not unknown, (f"{name}: labels {sorted(unknown)}; if their values are a small "
                             "fixed set, add them to BOUNDED_LABELS saying why")
        assert not metric.labels & {"le", "quantile", "job", "instance"}, name


def test_docs_list_every_metric_with_its_help_text() -> None:
    metrics = exported()
    for component, path in DOCS.items():
        documented = [(m["name"], m["kind"], m["labels"], m["help"])
                      for m in ROW.finditer(path.read_text())]
        expected = [_row(m) for m in metrics.values() if m.component == component]
        assert documented == expected, f"{path.name}'s metrics table is not what is exported"


def test_watch_restarts_are_a_counter_read_from_the_watchers_when_scraped() -> None:
    metrics = ControllerMetrics()
    name = "ferry_controller_watch_restarts_total"
    assert metrics.registry.get_sample_value(name) == 0.0  # before the watches start
    restarts = [1, 2]
    metrics.watch_restarts_from(lambda: float(sum(restarts)))
    assert metrics.registry.get_sample_value(name) == 3.0
    restarts.append(4)
    assert metrics.registry.get_sample_value(name) == 7.0
