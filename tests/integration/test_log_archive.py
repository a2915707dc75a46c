"""Step logs outlive their runs and pods: the controller archives each step's log from the API
server (`pods/log`, served by the simulated kubelet from the scripts it really ran) when the
step ends, on both stores (a directory, and the real S3-compatible server). Real API server,
real Tekton, the controller as a process.
"""

from __future__ import annotations

import gzip
import json
import secrets
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ci.archive.layout import StepKey
from ci.archive.steps import StepRecord, read_log, run_records
from ci.kube import labels
from ci.masking import MASK, printed_forms
from pipelines.events import Event, EventKind
from pipelines.linting import load_spec
from pipelines.planning import Plan, plan
from pipelines.tekton import CompileOptions, compile_pipeline_run
from tests.binding import create_bound
from tests.cluster.kubelet import EXIT_CODES_ANNOTATION, RUN_SCRIPTS_ANNOTATION, SimulatedKubelet
from tests.cluster.log_archives import LogArchive, log_archive
from tests.cluster.resources import Kube, Obj
from tests.cluster.tekton import TektonController
from tests.integration.controller_fixtures import (
    OWNER_NAME,
    REPOSITORY_URL,
    ControllerProcess,
    ServedForge,
    controller,
    create_repository,
    run_path,
    served_forge,
    sha_for,
    wait_for,
)

__all__ = ["controller", "log_archive", "served_forge"]  # fixtures, imported to be found

LINES = 3000
SPEC = f"""
jobs:
  build:
    image: alpine:3.20
    secrets:
      - env: DEPLOY_TOKEN
        secret: deploy-credentials
        key: token
    steps:
      - name: test
        run: |
          echo "collecting tests"
          i=1
          while [ $i -le {LINES} ]; do echo "line $i of the build log"; i=$((i + 1)); done
          echo "token is $DEPLOY_TOKEN"
          printf '%s\\n' "$DEPLOY_TOKEN" | base64
          echo "FAILED: the end"
          exit 3
"""
REPOSITORY = "widget"  # the Repository object's name (`create_repository`)


def failing_run(namespace: str, name: str, *, sha: str, run_scripts: bool = True) -> Obj:
    """The run the receiver would create for SPEC, its scripts run by the kubelet (the clone,
    whose repository nothing serves, forced to pass)."""
    spec, _ = load_spec(SPEC.encode(), filename=".ci.yaml")
    event = Event(kind=EventKind.PUSH, repository=OWNER_NAME, repository_url=REPOSITORY_URL,
                  sha=sha, ref="refs/heads/main", branch="main", author="alice")
    planned = plan(spec, event)
    assert isinstance(planned, Plan), planned
    run = compile_pipeline_run(planned, event, options=CompileOptions(namespace=namespace))
    run["metadata"]["name"] = name
    run["metadata"]["annotations"].update({
        labels.REPOSITORY_URL: REPOSITORY_URL,
        # Without scripts the kubelet only says the step was not run; it fails all the same.
        EXIT_CODES_ANNOTATION: json.dumps({"clone": 0} if run_scripts
                                          else {"clone": 0, "build/test": 3}),
        RUN_SCRIPTS_ANNOTATION: "true" if run_scripts else "false",
    })
    return run


def app_repository(kube: Kube, namespace: str, served_forge: ServedForge, *, keep_runs: int
                   ) -> None:
    """A Repository reporting with a GitHub App: check runs, which carry the failing tail."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    served_forge.forge.app_id = "4242"
    served_forge.forge.app_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    create_repository(kube, namespace, api_url=served_forge.api_url, github_app=(4242, 77),
                      secret_data={"private-key": private_pem}, keep_runs=keep_runs)


def deploy_secret(kube: Kube, namespace: str, value: str) -> None:
    import base64  # noqa: PLC0415

    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "deploy-credentials", "namespace": namespace},
                 "data": {"token": base64.b64encode(value.encode()).decode()}})


def pods_of(kube: Kube, namespace: str, run: str) -> list[Obj]:
    found: list[Obj] = kube.get(f"/api/v1/namespaces/{namespace}/pods",
                                labelSelector=f"{labels.TEKTON_PIPELINE_RUN}={run}")["items"]
    return found


def step_key(namespace: str, run: str, step: str) -> StepKey:
    return StepKey(namespace=namespace, repository=REPOSITORY, run=run, job="build", step=step)


def records_of(archive: LogArchive, namespace: str, run: str) -> dict[str, StepRecord]:
    return {record.key.step: record for record in
            run_records(archive.store, namespace=namespace, repository=REPOSITORY, run=run)}


def whole_log(archive: LogArchive, key: StepKey) -> str:
    chunks = read_log(archive.store, key)
    assert chunks is not None, f"{key.log_name} is not in the {archive.kind} archive"
    return b"".join(chunks).decode()


def stored_texts(root: Path) -> dict[str, str]:
    """Every object the store holds, as text (gzipped ones unpacked), by path."""
    texts = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            texts[str(path)] = (gzip.decompress(data) if data[:2] == b"\x1f\x8b"
                                else data).decode(errors="replace")
    return texts


def test_a_failing_runs_whole_log_outlives_its_run_and_pods_masked_everywhere(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet,
    served_forge: ServedForge, controller: ControllerProcess, log_archive: LogArchive,
) -> None:
    secret = f"dpl_{secrets.token_hex(16)}"
    deploy_secret(kube, namespace, secret)
    # keepRuns 0: the run is pruned as soon as the controller may, so the test sees that
    # pruning waits for the archive (else the pods would be gone and the logs lost).
    app_repository(kube, namespace, served_forge, keep_runs=0)
    controller.environment = log_archive.environment
    controller.start()
    controller.wait_ready()
    name, sha = "fails", sha_for(21)
    create_bound(kube, failing_run(namespace, name, sha=sha))

    def build_check() -> dict[str, Any] | None:
        return next((run for run in served_forge.forge.check_runs.values()
                     if run.get("head_sha") == sha and run["name"] == "ferry/build"
                     and run["status"] == "completed"), None)

    wait_for(lambda: build_check() is not None, what="the failing job's check run completed",
             controller=controller, timeout=300)
    wait_for(lambda: not kube.exists(run_path(namespace, name)), what="the run pruned",
             controller=controller, timeout=300)
    wait_for(lambda: not pods_of(kube, namespace, name), what="its pods deleted",
             controller=controller, timeout=300)

    # The whole log, in order, from the archive alone: run and pods are gone.
    records = records_of(log_archive, namespace, name)
    assert set(records) == {"clone", "test"}
    test = records["test"]
    assert test.lost is None and not test.truncated
    assert test.details.exit_code == 3 and test.details.job == "build"
    assert (test.details.forge_repository, test.details.sha) == (OWNER_NAME, sha)
    assert test.details.started_at and test.details.finished_at and test.details.pod
    lines = whole_log(log_archive, step_key(namespace, name, "test")).splitlines()
    assert lines[0] == "collecting tests"
    assert lines[1:LINES + 1] == [f"line {i} of the build log" for i in range(1, LINES + 1)]
    assert lines[LINES + 1:] == [f"token is {MASK}", MASK, "FAILED: the end"]
    assert test.stored == len("\n".join(lines)) + 1 and test.size > test.stored  # masked
    assert records["clone"].details.exit_code == 0

    # The check run's tail: the failing step's last lines, masked alike.
    check = build_check()
    assert check is not None and check["conclusion"] == "failure"
    assert f"token is {MASK}" in check["output"]["text"]
    assert "FAILED: the end" in check["output"]["text"]

    # Masked in every place a log appears: the forge, the archive's bytes, the records,
    # the controller's own log.
    forms = printed_forms(secret)
    places = {"forge": json.dumps(list(served_forge.forge.check_runs.values())),
              "controller log": "\n".join(json.dumps(entry) for entry in controller.logs()),
              **stored_texts(log_archive.root)}
    assert len(places) >= 2 + 4  # two steps, a log and a record each
    leaks = [place for place, text in places.items() if any(form in text for form in forms)]
    assert leaks == []


def test_a_pod_deleted_before_its_log_was_read_is_recorded_lost_once(
    kube: Kube, namespace: str, tekton: TektonController, kubelet: SimulatedKubelet,
    served_forge: ServedForge, controller: ControllerProcess, log_archive: LogArchive,
) -> None:
    create_repository(kube, namespace, api_url=served_forge.api_url)
    deploy_secret(kube, namespace, f"dpl_{secrets.token_hex(16)}")
    name = "orphaned"
    create_bound(kube, failing_run(namespace, name, sha=sha_for(22), run_scripts=False))

    def finished() -> bool:
        run = kube.get(run_path(namespace, name))
        conditions = (run.get("status") or {}).get("conditions") or []
        return bool(conditions) and conditions[0].get("status") != "Unknown"

    # No controller yet: the run ends and its pods are deleted before anyone read a log.
    wait_for(finished, what="the run to end", timeout=300)
    for pod in pods_of(kube, namespace, name):
        kube.delete(f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}")
    wait_for(lambda: not pods_of(kube, namespace, name), what="its pods deleted", timeout=120)

    controller.environment = log_archive.environment
    controller.extra = ("--log-level", "debug")
    controller.start()

    def archived() -> bool:
        run = kube.get(run_path(namespace, name))
        return labels.ARCHIVED in (run["metadata"].get("annotations") or {})

    wait_for(archived, what="the run marked archived", controller=controller, timeout=300)
    records = records_of(log_archive, namespace, name)
    assert set(records) == {"clone", "test"}
    for record in records.values():
        assert record.lost is not None and "deleted" in record.lost, record
        assert read_log(log_archive.store, record.key) is None
    assert records["test"].details.exit_code == 3  # what is known is kept

    # A restart finds the run archived: nothing is read or written again.
    controller.stop()
    controller.start()

    def latest_log() -> list[dict[str, Any]]:
        path = controller.log_path
        text = path.read_text(errors="replace") if path.is_file() else ""
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    wait_for(lambda: any(entry.get("event") == "resumed" for entry in latest_log()),
             what="the restarted controller resumed", controller=controller)
    events = [entry.get("event") for entry in controller.logs()]
    assert events.count("step log lost") == 2
    assert "step log archived" not in events
    marked = yaml.safe_load(kube.get(run_path(namespace, name))["metadata"]["annotations"][
        labels.ARCHIVED])
    assert (marked["steps"], marked["lost"]) == (2, 2)
