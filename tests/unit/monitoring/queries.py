"""Checking a PromQL query against what Ferry exports: it parses (Prometheus' parser,
ported), and selects only exported series, by labels they carry, for label values some code
of Ferry writes. Used for the dashboard and the alerts, as files and as kustomize renders them.

One series that Ferry does not export is allowed: Prometheus' own `up` of each scraped target,
and only for a job the component's ServiceMonitors make (the Service's name), since a
receiver that is down counts no failed delivery.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from ci.forges.types import ForgeKind
from tests.unit.monitoring.exported import series

ROOT = Path(__file__).resolve().parents[3]
# Grafana's interval variables, as Prometheus would see them once Grafana filled them in.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
# The labels the Prometheus Operator gives every target of a ServiceMonitor.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "service", "pod", "container",
                           "endpoint"})


def scraped_jobs() -> set[str]:
    """The jobs deploy/monitoring's ServiceMonitors make: the names of the Services they
    select (the Prometheus Operator's default job label)."""
    documents = [d for folder in ("deploy/base", "deploy/monitoring")
                 for path in sorted((ROOT / folder).glob("*.yaml"))
                 for d in yaml.safe_load_all(path.read_text()) if d]
    services = [d for d in documents if d["kind"] == "Service"]
    return {service["metadata"]["name"]
            for monitor in documents if monitor["kind"] == "ServiceMonitor"
            for service in services
            if monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"].get("labels", {}).items()}


RECEIVER_OUTCOMES = ("webhooks/handling.py", "webhooks/receiver.py", "webhooks/answers.py")


def _words(path: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, (ROOT / path).read_text()))


def label_values() -> dict[str, set[str]]:
    """The values Ferry writes for the labels a query may match on, read from the code that
    writes them (a query matching a value no code writes would never match anything)."""
    receiver: set[str] = set()
    for path in RECEIVER_OUTCOMES:  # the flow, its state and the table of refusals
        receiver |= (_words(path, r'outcome="([a-z-]+)"')
                     | _words(path, r'outcome="[a-z-]+" if [^\n]* else "([a-z-]+)"')
                     | _words(path, r'\), \d{3}, "([a-z-]+)"'))
    controller = _words("ci/controller/posting.py", r'labels\(forge\.kind, "([a-z]+)"\)')
    assert {"created", "existing", "forge-error", "unauthorized", "timeout"} <= receiver
    assert controller == {"acknowledged", "rejected"}
    return {"outcome": receiver | controller, "job": scraped_jobs(),
            "forge": {kind.value for kind in ForgeKind} | {"unknown"},
            "result": _words("webhooks/last_events.py", r'self\._count\("([a-z]+)"\)')}


def _values(matcher: Any) -> set[str]:
    if matcher.op in (promql_parser.MatchOp.Equal, promql_parser.MatchOp.NotEqual):
        return {matcher.value}
    # Regular expressions here are alternations of plain words, so they can be checked.
    assert re.fullmatch(r"[a-z-]+(\|[a-z-]+)*", matcher.value), matcher.value
    return set(matcher.value.split("|"))


def check_query(query: str) -> set[str]:
    """Parse `query`; fail unless it selects only exported series, by their own labels, for
    values Ferry writes. The series it names."""
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    expression = promql_parser.parse(query)  # ValueError: not PromQL
    known = series() | {"up": TARGET_LABELS}
    values = label_values()
    selectors: list[Any] = []
    groupings: list[list[str]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            groupings.append(list(node.modifier.labels))
        elif (isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None
              and node.modifier.matching is not None):
            groupings.append(list(node.modifier.matching.labels))
        return True

    promql_parser.walk(expression, visit)
    names = {selector.name for selector in selectors}
    assert names, f"{query}: names no metric"
    unknown = names - known.keys()
    assert not unknown, f"{query}: {sorted(unknown)} are not exported by Ferry"
    labels: set[str] = set()
    for selector in selectors:
        have = known[selector.name]
        if selector.name == "up":  # only a target of Ferry's: one job named
            assert [m.name for m in selector.matchers.matchers
                    if m.op == promql_parser.MatchOp.Equal] == ["job"], query
        labels |= have
        for matcher in selector.matchers.matchers:
            assert matcher.name in have, f"{query}: {selector.name} has no label {matcher.name}"
            if matcher.name in values:
                wrong = _values(matcher) - values[matcher.name]
                assert not wrong, f"{query}: no code writes {matcher.name} {sorted(wrong)}"
    for grouping in groupings:
        assert set(grouping) <= labels, f"{query}: grouped by {grouping}, not labels of it"
    return names
