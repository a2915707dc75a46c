"""deploy/monitoring/: the dashboard is its generator's output, and every query of the
dashboard and the alerts parses as PromQL (Prometheus' parser, ported) and asks only for
series Ferry exports, by labels they carry, for label values Ferry writes.

Rendering the component with kustomize and the API server's verdict on it are in
tests/integration/test_deploy.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.unit.monitoring.exported import exported
from tests.unit.monitoring.queries import check_query

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "deploy" / "monitoring"
BASE = ROOT / "deploy" / "base"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ferry_dashboard", MONITORING / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _alerts() -> list[dict[str, Any]]:
    [rule] = [d for d in yaml.safe_load_all((MONITORING / "alerts.yaml").read_text()) if d]
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    return [alert for group in rule["spec"]["groups"] for alert in group["rules"]]


def test_the_committed_dashboard_is_the_generators_output() -> None:
    committed = (MONITORING / "dashboard.json").read_text()
    assert committed == _generator().render(), (
        "deploy/monitoring/dashboard.json is stale: run python3 deploy/monitoring/dashboard.py")


def test_every_dashboard_query_names_only_metrics_ferry_exports() -> None:
    model = json.loads((MONITORING / "dashboard.json").read_text())
    shown: set[str] = set()
    panels = [p for p in _panels(model) if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            shown |= check_query(target["expr"])
    # Every metric is on the dashboard, in one of its series.
    missing = {m.name for m in exported().values() if not shown & m.series().keys()}
    assert not missing, (f"not on the dashboard: {sorted(missing)}; add a panel in "
                         "deploy/monitoring/dashboard.py and run it")


def test_the_dashboard_is_laid_out_on_grafanas_grid_with_one_datasource_variable() -> None:
    model = json.loads((MONITORING / "dashboard.json").read_text())
    panels = list(_panels(model))
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(set(refs)) == len(refs)
    [variable] = model["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource", "datasource", "prometheus")


@pytest.mark.parametrize("query", [
    "rate(ferry_webhook_events[5m])",  # the family, not the counter's series
    "ferry_controller_reports_total{repository=\"a/b\"}",  # no such label
    "sum by (pod_name) (ferry_controller_leader)",  # grouped by a label it lacks
    "ferry_webhook_events_total{outcome=\"created-ish\"}",  # a value no code writes
    "rate(ferry_controller_leader)",  # not PromQL: rate of an instant vector
    "vector(1)",  # names no metric
    "up",  # Prometheus' own series, but not of a target of Ferry's
    'up{job="node-exporter"}',
])
def test_the_query_check_refuses_what_would_show_nothing(query: str) -> None:
    with pytest.raises((AssertionError, ValueError)):
        check_query(query)


def test_alerts_ask_only_for_exported_metrics_and_say_what_to_do() -> None:
    alerts = _alerts()
    names = [alert["alert"] for alert in alerts]
    assert len(set(names)) == len(names)
    by_metric: dict[str, set[str]] = {}
    for alert in alerts:
        assert re.fullmatch(r"Ferry[A-Z][A-Za-z]+", alert["alert"])
        for metric in check_query(alert["expr"]):
            by_metric.setdefault(metric, set()).add(alert["alert"])
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", alert.get("for", "0s")), alert["for"]
    # The list: deliveries failing, reports backing up, reports in doubt, the archive
    # falling behind, the leader missing.
    for metric in ("ferry_webhook_events_total", "ferry_controller_queue_depth",
                   "ferry_controller_reports_in_doubt_total", "ferry_archive_pending_steps",
                   "ferry_controller_leader"):
        assert metric in by_metric, f"no alert on {metric}"


def test_the_component_scrapes_both_components_on_their_metrics_ports() -> None:
    component = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    documents = [d for name in component["resources"]
                 for d in yaml.safe_load_all((MONITORING / name).read_text()) if d]
    base = [d for path in sorted(BASE.glob("*.yaml"))
            for d in yaml.safe_load_all(path.read_text()) if d]
    services = [d for d in [*base, *documents] if d["kind"] == "Service"]
    deployments = {d["metadata"]["name"]: d for d in base if d["kind"] == "Deployment"}
    monitors = [d for d in documents if d["kind"] == "ServiceMonitor"]
    scraped = set()
    for monitor in monitors:
        wanted = monitor["spec"]["selector"]["matchLabels"]
        [service] = [s for s in services
                     if wanted.items() <= s["metadata"].get("labels", {}).items()]
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        [port] = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        # The Service reaches a Deployment's pods, on a port their container declares.
        [deployment] = [d for d in deployments.values()
                        if service["spec"]["selector"].items()
                        <= d["spec"]["template"]["metadata"]["labels"].items()]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert port["targetPort"] in {p["name"] for p in container["ports"]}
        assert monitor["spec"]["namespaceSelector"]["matchNames"] == [
            service["metadata"]["namespace"]]
        scraped.add(deployment["metadata"]["name"])
    assert scraped == {"ferry-webhooks", "ferry-controller"}
    [generator] = component["configMapGenerator"]
    assert generator["files"] == ["ferry.json=dashboard.json"]
    assert generator["options"]["labels"]["grafana_dashboard"] == "1"
