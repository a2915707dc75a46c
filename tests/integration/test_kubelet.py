"""The simulated kubelet on pods that are not Tekton's (no Tekton controller needed)."""

from __future__ import annotations

from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube, KubeError


def test_plain_pod_is_bound_runs_and_goes_when_deleted(
    kube: Kube, namespace: str, kubelet: SimulatedKubelet
) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods/web"
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        }
    )
    wait_until(
        lambda: kube.get(path).get("status", {}).get("phase") == "Running",
        what="the pod to run",
        timeout=60,
    )
    pod = kube.get(path)
    assert pod["spec"]["nodeName"] == kubelet.node_name
    assert pod["status"]["podIP"].startswith("10.244.")
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert pod["status"]["containerStatuses"][0]["state"]["running"]

    kube.delete(path)  # graceful: a real kubelet finishes it, so must ours

    def gone() -> bool:
        try:
            kube.get(path)
        except KubeError as error:
            return error.status == 404
        return False

    wait_until(gone, what="the deleted pod to disappear", timeout=60)
