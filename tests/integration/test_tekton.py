"""Compiled PipelineRuns through the real Tekton controller and the simulated kubelet."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
from pipelines.tekton import UNTRUSTED_LABEL, CompileOptions, compile_pipeline_run
from tests.cluster.kubelet import EXIT_CODES_ANNOTATION, RUN_SCRIPTS_ANNOTATION, SimulatedKubelet
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube, Obj
from tests.cluster.tekton import (
    TEKTON_API,
    VALIDATION_FAILURE_REASONS,
    TektonController,
    succeeded_condition,
    wait_for_pipeline_run,
)
from tests.integration.goldens import GOLDEN_DIR, golden_params, load_golden
from tests.unit.pipelines.test_golden import load_event

# A golden with several jobs in a DAG: the run the end-to-end path exercises most.
DAG_GOLDEN = GOLDEN_DIR / "dag.pipelinerun.yaml"


def _task_runs(kube: Kube, namespace: str, run_name: str) -> dict[str, Obj]:
    """The run's TaskRuns by pipeline task name."""
    listed = kube.get(
        f"/apis/{TEKTON_API}/namespaces/{namespace}/taskruns",
        labelSelector=f"tekton.dev/pipelineRun={run_name}",
    )
    return {tr["metadata"]["labels"]["tekton.dev/pipelineTask"]: tr for tr in listed["items"]}


def _run(kube: Kube, tekton: TektonController, run: Obj, *, timeout: float = 240.0) -> Obj:
    created = kube.create(run)
    return wait_for_pipeline_run(
        kube,
        created["metadata"]["namespace"],
        created["metadata"]["name"],
        timeout=timeout,
        watching=[c for c in tekton.control_plane.components],
    )


def _describe(run: Obj, task_runs: dict[str, Obj]) -> str:
    lines = [f"PipelineRun: {succeeded_condition(run)}"]
    for name, task_run in sorted(task_runs.items()):
        lines.append(f"  {name}: {succeeded_condition(task_run)}")
    return "\n".join(lines)


def test_compiled_run_is_reconciled_into_pods_and_succeeds(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet
) -> None:
    run = load_golden(DAG_GOLDEN, namespace)
    done = _run(kube, tekton, run)
    task_runs = _task_runs(kube, namespace, run["metadata"]["name"])

    condition = succeeded_condition(done)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("True", "Succeeded"), _describe(
        done, task_runs
    )
    expected_tasks = {task["name"] for task in run["spec"]["pipelineSpec"]["tasks"]}
    assert set(task_runs) == expected_tasks
    for task_run in task_runs.values():
        pod = kube.get(f"/api/v1/namespaces/{namespace}/pods/{task_run['status']['podName']}")
        assert pod["spec"]["nodeName"] == kubelet.node_name
        assert pod["status"]["phase"] == "Succeeded"
        steps = task_run["status"]["steps"]
        assert [s["terminated"]["exitCode"] for s in steps] == [0] * len(steps)


def test_failing_step_fails_the_run_and_names_the_task(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet
) -> None:
    spec = load_golden(DAG_GOLDEN, namespace)["spec"]["pipelineSpec"]
    task = spec["tasks"][0]
    failing_step = task["taskSpec"]["steps"][-1]["name"]
    run = load_golden(
        DAG_GOLDEN,
        namespace,
        **{EXIT_CODES_ANNOTATION: json.dumps({f"{task['name']}/{failing_step}": 3})},
    )
    done = _run(kube, tekton, run)
    task_runs = _task_runs(kube, namespace, run["metadata"]["name"])

    condition = succeeded_condition(done)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "Failed"), _describe(
        done, task_runs
    )
    failed = succeeded_condition(task_runs[task["name"]])
    assert failed is not None
    assert failed["status"] == "False"
    assert failed["reason"] == "StepFailed"
    assert f'"step-{failing_step}" exited with code 3' in failed["message"]
    # Tekton's run message counts failures; the failing task is named by its TaskRun, which
    # the run lists in childReferences under the pipeline task's name.
    children = {c["pipelineTaskName"] for c in done["status"]["childReferences"]}
    assert task["name"] in children


def _script_run(namespace: str) -> Obj:
    """Two tasks that pass a result, whose scripts the kubelet really runs."""
    return {
        "apiVersion": TEKTON_API,
        "kind": "PipelineRun",
        "metadata": {
            "name": "scripts",
            "namespace": namespace,
            "annotations": {RUN_SCRIPTS_ANNOTATION: "true"},
        },
        "spec": {
            "params": [{"name": "greeting", "value": "hello; $(not interpolated)"}],
            "pipelineSpec": {
                "params": [{"name": "greeting"}],
                "results": [{"name": "echoed", "value": "$(tasks.consume.results.echoed)"}],
                "tasks": [
                    {
                        "name": "produce",
                        "params": [{"name": "greeting", "value": "$(params.greeting)"}],
                        "taskSpec": {
                            "params": [{"name": "greeting"}],
                            "results": [{"name": "greeting"}],
                            "steps": [
                                {
                                    "name": "write",
                                    "image": "alpine",
                                    "env": [{"name": "GREETING", "value": "$(params.greeting)"}],
                                    "script": 'printf %s "$GREETING" > $(results.greeting.path)',
                                }
                            ],
                        },
                    },
                    {
                        "name": "consume",
                        "params": [{"name": "got", "value": "$(tasks.produce.results.greeting)"}],
                        "taskSpec": {
                            "params": [{"name": "got"}],
                            "results": [{"name": "echoed"}],
                            "steps": [
                                {
                                    "name": "python",
                                    "image": "python",
                                    "env": [{"name": "GOT", "value": "$(params.got)"}],
                                    "script": (
                                        "#!/usr/bin/env python3\n"
                                        "import os\n"
                                        "got = os.environ['GOT']\n"
                                        "assert got.startswith('hello'), got\n"
                                        "open('$(results.echoed.path)', 'w').write(got.upper())\n"
                                    ),
                                },
                                {
                                    "name": "fail-but-continue",
                                    "image": "alpine",
                                    "onError": "continue",
                                    "script": "exit 7",
                                },
                            ],
                        },
                    },
                ],
            },
        },
    }


def test_scripts_run_for_real_and_pass_results(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet
) -> None:
    done = _run(kube, tekton, _script_run(namespace))
    task_runs = _task_runs(kube, namespace, "scripts")

    condition = succeeded_condition(done)
    assert condition is not None
    assert condition["status"] == "True", _describe(done, task_runs)
    assert done["status"]["results"] == [{"name": "echoed", "value": "HELLO; $(NOT INTERPOLATED)"}]
    steps = {s["name"]: s for s in task_runs["consume"]["status"]["steps"]}
    assert steps["fail-but-continue"]["terminated"]["exitCode"] == 7
    assert steps["fail-but-continue"]["terminationReason"] == "Continued"
    executed = {r.container for r in kubelet.records if r.namespace == namespace and r.executed}
    assert executed == {"step-write", "step-python", "step-fail-but-continue"}


def test_failing_script_fails_its_task_and_skips_the_rest(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet
) -> None:
    run = _script_run(namespace)
    produce: dict[str, Any] = run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]
    produce["steps"].insert(0, {"name": "broken", "image": "alpine", "script": "false"})
    done = _run(kube, tekton, run)
    task_runs = _task_runs(kube, namespace, "scripts")

    condition = succeeded_condition(done)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "Failed")
    assert set(task_runs) == {"produce"}  # consume needs produce's result: never started
    steps = {s["name"]: s for s in task_runs["produce"]["status"]["steps"]}
    assert steps["broken"]["terminated"]["exitCode"] == 1
    assert steps["write"]["terminationReason"] == "Skipped"


@pytest.mark.parametrize("path", golden_params())
def test_golden_run_passes_tekton_validation(
    path: Path, kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet
) -> None:
    run = load_golden(path, namespace)
    done = _run(kube, tekton, run)
    task_runs = _task_runs(kube, namespace, run["metadata"]["name"])
    description = _describe(done, task_runs)

    for obj in [done, *task_runs.values()]:
        condition = succeeded_condition(obj)
        assert condition is not None
        assert condition["reason"] not in VALIDATION_FAILURE_REASONS, description
    condition = succeeded_condition(done)
    assert condition is not None
    assert condition["status"] == "True", description


def test_finally_tasks_run_after_a_failure_forced_by_namespace(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet
) -> None:
    # The way an end-to-end test fails a job in a run that Ferry created, not the test.
    kubelet.force_exit_code(namespace, "test/run-1", 2)
    run = load_golden(GOLDEN_DIR / "finally.pipelinerun.yaml", namespace)
    done = _run(kube, tekton, run)
    task_runs = _task_runs(kube, namespace, run["metadata"]["name"])

    condition = succeeded_condition(done)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "Failed")
    outcomes = {
        name: (c["status"], c["reason"])
        for name, task_run in task_runs.items()
        if (c := succeeded_condition(task_run)) is not None
    }
    assert outcomes == {
        "test": ("False", "StepFailed"),
        "notify": ("True", "Succeeded"),
        "cleanup": ("True", "Succeeded"),
    }


def test_cancelling_a_run_stops_its_running_script(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet
) -> None:
    run = _script_run(namespace)
    produce: dict[str, Any] = run["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]
    produce["steps"].insert(0, {"name": "slow", "image": "alpine", "script": "sleep 300"})
    kube.create(run)
    pods = f"/api/v1/namespaces/{namespace}/pods"

    def sleeping() -> bool:
        return any(
            s["name"] == "step-slow" and "running" in s["state"]
            for pod in kube.get(pods)["items"]
            if pod.get("status", {}).get("phase") == "Running"
            and pod["metadata"]["annotations"].get("tekton.dev/ready") == "READY"
            for s in pod["status"].get("containerStatuses", [])
        )

    wait_until(sleeping, what="the slow step to start", timeout=120)
    time.sleep(1)  # let the kubelet start the script
    kube.merge_patch(
        f"/apis/{TEKTON_API}/namespaces/{namespace}/pipelineruns/scripts",
        {"spec": {"status": "Cancelled"}},
    )
    started = time.monotonic()
    done = wait_for_pipeline_run(kube, namespace, "scripts", timeout=120)
    condition = succeeded_condition(done)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "Cancelled")
    wait_until(
        lambda: not kube.get(pods)["items"], what="the cancelled run's pod to go", timeout=120
    )
    assert time.monotonic() - started < 120  # not the 300 s the script would sleep
    assert not [
        r for r in kubelet.records if r.namespace == namespace and r.container == "step-slow"
    ]


SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _compiled_services_run(namespace: str, **options: Any) -> Obj:
    """The services golden's spec compiled for `namespace` with `options`: steps and sidecars."""
    event = load_event(GOLDEN_DIR / "default.event.yaml")
    spec, _ = load_spec((GOLDEN_DIR / "services.ci.yaml").read_bytes(), filename="services")
    planned = plan(spec, event)
    assert isinstance(planned, Plan)
    return compile_pipeline_run(
        planned, event, options=CompileOptions(namespace=namespace, **options)
    )


def _token_mounts(pod: Obj) -> list[str]:
    """Where the pod gets a Kubernetes API token: projected token volumes, and mounts of the
    well-known path, as the API server's ServiceAccount admission adds them."""
    spec = pod["spec"]
    found = [
        f"volume {volume['name']}"
        for volume in spec.get("volumes", [])
        for source in volume.get("projected", {}).get("sources", [])
        if "serviceAccountToken" in source
    ]
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        found += [
            f"{container['name']} mounts {mount['name']}"
            for mount in container.get("volumeMounts", [])
            if mount["mountPath"].startswith(SERVICE_ACCOUNT_MOUNT)
        ]
    return found


@pytest.mark.parametrize(
    ("options", "account", "token", "untrusted"),
    [
        ({}, "default", False, False),
        ({"service_account": "deployer"}, "deployer", True, False),
        ({"service_account": "deployer", "untrusted": True}, "default", False, True),
    ],
    ids=["no-account", "trusted-with-account", "untrusted"],
)
def test_pods_tekton_creates_get_a_token_only_for_a_trusted_run_with_an_account(
    kube: Kube,
    namespace: str,
    tekton: TektonController,
    kubelet: SimulatedKubelet,
    options: dict[str, Any],
    account: str,
    token: bool,
    untrusted: bool,
) -> None:
    kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "deployer", "namespace": namespace}})  # fmt: skip
    run = _compiled_services_run(namespace, **options)
    done = _run(kube, tekton, run)
    task_runs = _task_runs(kube, namespace, run["metadata"]["name"])
    condition = succeeded_condition(done)
    assert condition is not None and condition["status"] == "True", _describe(done, task_runs)
    assert task_runs
    for task_run in task_runs.values():
        pod = kube.get(f"/api/v1/namespaces/{namespace}/pods/{task_run['status']['podName']}")
        spec = pod["spec"]
        assert spec["serviceAccountName"] == account
        if token:
            assert _token_mounts(pod), "the named account's token should be mounted"
        else:
            assert spec["automountServiceAccountToken"] is False
            assert _token_mounts(pod) == []
        # The NetworkPolicy's selector (deploy/team/) finds exactly the untrusted runs' pods.
        assert (pod["metadata"]["labels"].get(UNTRUSTED_LABEL) == "true") is untrusted
        steps = [c for c in spec["containers"] if c["name"].startswith("step-")]
        sidecars = [c for c in spec["containers"] if c["name"].startswith("sidecar-")]
        assert steps[0]["name"] == "step-clone" and sidecars
        for container in [*steps, *sidecars]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, container
