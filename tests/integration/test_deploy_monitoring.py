"""deploy/monitoring/ as users install it: kustomize (the kubectl built beside the API server)
renders the component into the example overlay, adding exactly its objects and leaving the
base as it was; what it renders is what the files say, its queries still match Ferry's
metrics, and the API server accepts the objects of the kinds it serves. The patches
docs/install.md shows for it do what it says, built by the same kustomize.

The test cluster has no Prometheus Operator, so the ServiceMonitors and the PrometheusRule
are checked as rendered here and field by field in tests/unit/monitoring.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.cluster.control_plane import ControlPlane
from tests.e2e.installation import DEPLOY, FIELD_MANAGER, install, kubectl, rendered
from tests.unit.monitoring.queries import check_query
from tests.unit.test_install_docs import yaml_blocks

MONITORING = DEPLOY / "monitoring"
OVERLAY = DEPLOY / "overlays" / "monitoring-example"
ADDED = {
    ("Service", "ferry-controller-metrics"),
    ("ServiceMonitor", "ferry-webhooks"),
    ("ServiceMonitor", "ferry-controller"),
    ("PrometheusRule", "ferry"),
    ("ConfigMap", "ferry-grafana-dashboard"),
}


@pytest.fixture(scope="module")
def installed(cluster: ControlPlane, cluster_bin_dir: Path) -> str:
    return install(cluster, cluster_bin_dir)


def test_the_component_adds_its_objects_to_the_base_and_they_apply(
    installed: str, cluster: ControlPlane, cluster_bin_dir: Path, tmp_path: Path
) -> None:
    base = {(o["kind"], o["metadata"]["name"]): o for o in rendered(cluster_bin_dir)}
    objects = {(o["kind"], o["metadata"]["name"]): o for o in rendered(cluster_bin_dir, OVERLAY)}
    added = {key: o for key, o in objects.items() if key not in base}
    assert set(added) == ADDED
    assert all(objects[key] == declared for key, declared in base.items()), "base changed"
    assert {o["metadata"]["namespace"] for o in added.values()} == {"ferry-system"}

    dashboard = added[("ConfigMap", "ferry-grafana-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    model = json.loads(dashboard["data"]["ferry.json"])
    assert model == json.loads((MONITORING / "dashboard.json").read_text())
    rule = added[("PrometheusRule", "ferry")]
    [declared] = [d for d in yaml.safe_load_all((MONITORING / "alerts.yaml").read_text()) if d]
    assert rule["spec"] == declared["spec"]
    # The queries as rendered, not only as written.
    queries = [alert["expr"] for group in rule["spec"]["groups"] for alert in group["rules"]]
    queries += [target["expr"] for panel in model["panels"] for target in panel.get("targets", [])]
    for query in queries:
        check_query(query)

    # What the test cluster serves: the Service and the ConfigMap, by the real API server.
    core = [o for o in added.values() if o["apiVersion"] == "v1"]
    path = tmp_path / "core.yaml"
    path.write_text(yaml.safe_dump_all(core))
    output = kubectl(cluster_bin_dir, "apply", "--server-side", "--dry-run=server",
                     f"--field-manager={FIELD_MANAGER}", "-f", str(path),
                     kubeconfig=cluster.kubeconfig)
    assert "service/ferry-controller-metrics serverside-applied" in output
    assert "configmap/ferry-grafana-dashboard serverside-applied" in output


def test_the_install_docs_patches_label_the_monitors_and_change_a_threshold(
    cluster_bin_dir: Path, tmp_path: Path
) -> None:
    # An overlay of the user's own, as docs/install.md#monitoring shows it.
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    patches = [patch for block in yaml_blocks("Monitoring")
               for patch in yaml.safe_load(block)["patches"]]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(DEPLOY / "base", overlay)],
        "components": [os.path.relpath(MONITORING, overlay)],
        "patches": patches,
    }))
    objects = rendered(cluster_bin_dir, overlay)
    operator = [o for o in objects if o["apiVersion"].startswith("monitoring.coreos.com/")]
    assert len(operator) == 3
    assert {o["metadata"]["labels"]["release"] for o in operator} == {"kube-prometheus-stack"}
    assert all("release" not in o["metadata"].get("labels", {}) for o in objects
               if o not in operator)
    [rule] = [o for o in operator if o["kind"] == "PrometheusRule"]
    exprs = {a["alert"]: a["expr"] for g in rule["spec"]["groups"] for a in g["rules"]}
    assert exprs["FerryReportsBackingUp"] == "max(ferry_controller_queue_depth) > 500"
    check_query(exprs["FerryReportsBackingUp"])
