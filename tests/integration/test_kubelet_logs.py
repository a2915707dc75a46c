"""Step logs through the API server: the simulated kubelet serves what the scripts printed, so
`kubectl logs` (and `pods/log`, which Ferry reads) work in the test cluster, `-f` included."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cluster.control_plane import ControlPlane
from tests.cluster.kubelet import RUN_SCRIPTS_ANNOTATION, SimulatedKubelet
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube, Obj
from tests.cluster.tekton import TektonController, wait_for_pipeline_run

TEKTON_API = "tekton.dev/v1"


def _printing_run(namespace: str, name: str, script: str) -> Obj:
    return {
        "apiVersion": TEKTON_API,
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {RUN_SCRIPTS_ANNOTATION: "true"}},
        "spec": {"pipelineSpec": {"tasks": [{"name": "build", "taskSpec": {"steps": [
            {"name": "print", "image": "alpine", "script": script},
            {"name": "after", "image": "alpine", "script": "echo after"},
        ]}}]}},
    }


def _pod_of(kube: Kube, namespace: str, run: str) -> str:
    def found() -> bool:
        pods = kube.get(f"/api/v1/namespaces/{namespace}/pods",
                        labelSelector=f"tekton.dev/pipelineRun={run}")
        return bool(pods["items"])

    wait_until(found, what=f"a pod of {run}", timeout=120)
    pods = kube.get(f"/api/v1/namespaces/{namespace}/pods",
                    labelSelector=f"tekton.dev/pipelineRun={run}")
    return str(pods["items"][0]["metadata"]["name"])


def _kubectl(cluster: ControlPlane, bin_dir: Path, *args: str) -> list[str]:
    return [str(bin_dir / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args]


def test_kubectl_logs_shows_what_a_step_printed_whole_and_tailed(
    kube: Kube, namespace: str, cluster: ControlPlane, cluster_bin_dir: Path,
    tekton: TektonController, kubelet: SimulatedKubelet,
) -> None:
    kube.create(_printing_run(namespace, "prints", 'for n in 1 2 3; do echo "line $n"; done'))
    wait_for_pipeline_run(kube, namespace, "prints", timeout=240,
                          watching=list(tekton.control_plane.components))
    pod = _pod_of(kube, namespace, "prints")
    logs = subprocess.run(_kubectl(cluster, cluster_bin_dir, "logs", "-n", namespace, pod,
                                   "-c", "step-print"),
                          capture_output=True, text=True, check=True, timeout=60)
    assert logs.stdout.splitlines() == ["line 1", "line 2", "line 3"]
    tailed = subprocess.run(_kubectl(cluster, cluster_bin_dir, "logs", "-n", namespace, pod,
                                     "-c", "step-print", "--tail=1"),
                            capture_output=True, text=True, check=True, timeout=60)
    assert tailed.stdout.splitlines() == ["line 3"]
    other = subprocess.run(_kubectl(cluster, cluster_bin_dir, "logs", "-n", namespace, pod,
                                    "-c", "step-after"),
                           capture_output=True, text=True, check=True, timeout=60)
    assert other.stdout.splitlines() == ["after"]


def test_kubectl_logs_follow_shows_lines_while_the_step_still_runs(
    kube: Kube, namespace: str, cluster: ControlPlane, cluster_bin_dir: Path,
    tekton: TektonController, kubelet: SimulatedKubelet,
) -> None:
    # The second line waits for a file the test writes only after it has seen the first.
    gate = kubelet.work_dir / f"gate-{namespace}"
    script = f'echo first\nwhile [ ! -e "{gate}" ]; do sleep 0.1; done\necho second\n'
    kube.create(_printing_run(namespace, "follows", script))
    pod = _pod_of(kube, namespace, "follows")

    def step_running() -> bool:
        statuses = kube.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")["status"].get(
            "containerStatuses", [])
        return any(s["name"] == "step-print" and "running" in s["state"] for s in statuses)

    wait_until(step_running, what="the step to run", timeout=120)
    with subprocess.Popen(_kubectl(cluster, cluster_bin_dir, "logs", "-f", "-n", namespace,
                                   pod, "-c", "step-print"),
                          stdout=subprocess.PIPE, text=True) as follow:
        try:
            assert follow.stdout is not None
            assert follow.stdout.readline() == "first\n"  # shown while the step still runs
            assert step_running()
            gate.touch()
            assert follow.stdout.readline() == "second\n"
            assert follow.wait(timeout=60) == 0  # the stream ends with the step
        finally:
            if follow.poll() is None:
                follow.kill()
    wait_for_pipeline_run(kube, namespace, "follows", timeout=240,
                          watching=list(tekton.control_plane.components))
