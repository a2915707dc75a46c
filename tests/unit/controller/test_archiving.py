"""The archiver's protocol on a real directory store, with the API server's parts faked:
steps archived as they end, lost logs recorded, exactly once across a restart, the run marked
only when all is kept, a failing store retried, a retried job's new pod archived again.
The end-to-end proof is tests/integration/test_log_archive.py."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci.archive.directory import DirectoryStore
from ci.archive.layout import StepKey
from ci.archive.steps import read_log, read_record
from ci.archive.store import StoreError
from ci.controller.archiving import Archiver
from ci.controller.leadership import Leadership
from ci.controller.metrics import ControllerMetrics
from ci.controller.pruning import archived
from ci.controller.retrying import Retry
from ci.controller.runs import RunSnapshot, TaskRunSnapshot
from ci.controller.store import Observation, RunStore
from ci.controller.verification import RunVerifier
from ci.kube import labels
from ci.kube.credentials import CredentialsCache
from ci.kube.errors import LogUnavailableError
from ci.kube.repositories import RepositoryIndex
from tests.binding import TEST_KEYS, bound
from tests.defaults import archive_defaults, controller_defaults
from tests.unit.controller.builders import pipeline_run, task_run
from tests.unit.kube.test_repositories import repository_object

SECRET = "hunter2-deploy-password"


class FakeApi:
    """`CustomObjectsApi.patch_namespaced_custom_object`, applying annotation patches."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.run = run
        self.patches: list[dict[str, Any]] = []

    def patch_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                       plural: str, name: str, body: dict[str, Any],
                                       **_: Any) -> dict[str, Any]:
        self.patches.append(body)
        self.run["metadata"]["annotations"].update(body["metadata"]["annotations"])
        return copy.deepcopy(self.run)


class Cluster:
    """A run with one job in the controller's store, and the logs its pods would serve."""

    def __init__(self, tmp_path: Path) -> None:
        self.archive = DirectoryStore(tmp_path / "logs")
        self.run = pipeline_run(jobs=("build",), secret=("deploy", "password"))
        self.run["metadata"]["namespace"] = "team-a"
        repository = repository_object("widget", "https://github.com/acme/widget")
        self.run = bound(self.run, repository)  # as the receiver signs the runs it makes
        self.api = FakeApi(self.run)
        self.store = RunStore(lambda observations: None)
        self.logs: dict[tuple[str, str], list[bytes]] = {}
        self.streamed: list[tuple[str, str]] = []
        self.archived: list[str] = []
        self.repositories = RepositoryIndex()
        self.repositories.on_relist([repository])
        self.metrics = ControllerMetrics()

    def archiver(self, **settings: Any) -> Archiver:
        def stream(namespace: str, pod: str, container: str) -> Iterator[bytes]:
            self.streamed.append((pod, container))
            if (pod, container) not in self.logs:
                raise LogUnavailableError(f"the pod {namespace}/{pod} was deleted")
            yield from self.logs[pod, container]

        def read_secret(namespace: str, name: str) -> dict[str, str] | None:
            return {"password": SECRET} if name == "deploy" else {"token": "forge-token-value"}

        return Archiver(
            api=self.api, store=self.store, repositories=self.repositories,
            credentials=CredentialsCache(read_secret), read_secret=read_secret,
            stream_log=stream, archive=self.archive,
            settings=archive_defaults(Path("unused"), **settings),
            leadership=Leadership(None, identity="test", settings=controller_defaults().leader),
            metrics=self.metrics,
            verifier=RunVerifier(lambda: TEST_KEYS, window=1e9, metrics=self.metrics),
            on_archived=lambda run, repository: self.archived.append(run.name),
            request_timeout=10.0,
        )

    def set_run(self, **changes: Any) -> None:
        status = self.run.setdefault("status", {})
        if "condition" in changes:
            state, reason = changes["condition"]
            status["conditions"] = [{"type": "Succeeded", "status": state, "reason": reason}]
        if "completion" in changes:
            status["completionTime"] = changes["completion"]
        self.store.remember(RunSnapshot.of(copy.deepcopy(self.run)))

    def set_task_run(self, obj: dict[str, Any]) -> None:
        obj["metadata"]["namespace"] = "team-a"
        self.store.update_task_run(TaskRunSnapshot.of(obj), deleted=False)

    def handle(self, archiver: Archiver) -> Retry | None:
        key = ("team-a", "widget-abc")
        return asyncio.run(archiver.handle(key, Observation(None, 0.0), 0))

    def key(self, step: str) -> StepKey:
        return StepKey(namespace="team-a", repository="widget", run="widget-abc", job="build",
                       step=step)

    def text(self, step: str) -> str:
        chunks = read_log(self.archive, self.key(step))
        assert chunks is not None
        return b"".join(chunks).decode()


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def running_task_run(*exit_codes: int, pod: str = "widget-abc-build-pod",
                     condition: tuple[str, str] = ("Unknown", "Running"),
                     running: int = 0) -> dict[str, Any]:
    obj = task_run(task="build", condition=condition, exit_codes=exit_codes)
    obj["status"]["podName"] = pod
    for step in obj["status"]["steps"]:
        step["terminated"].update(startedAt="2024-05-01T10:00:02Z",
                                  finishedAt="2024-05-01T10:00:05Z")
    for index in range(running):
        obj["status"]["steps"].append({"name": f"r{index}", "container": f"step-r{index}",
                                       "running": {"startedAt": "2024-05-01T10:00:06Z"}})
    return obj


def test_steps_are_archived_as_they_end_and_the_run_marked_when_all_are(
        cluster: Cluster) -> None:
    archiver = cluster.archiver()
    cluster.logs["widget-abc-build-pod", "step-s0"] = [b"clone ok\n"]
    cluster.logs["widget-abc-build-pod", "step-r0"] = [b"pass", f"word {SECRET}\n".encode()]
    cluster.set_run(condition=("Unknown", "Running"))
    cluster.set_task_run(running_task_run(0, running=1))
    assert cluster.handle(archiver) is None
    # The first step ended: archived; the second still runs: not read yet.
    assert cluster.streamed == [("widget-abc-build-pod", "step-s0")]
    assert cluster.text("s0") == "clone ok\n"
    record = read_record(cluster.archive, cluster.key("s0"))
    assert record is not None and record.details.exit_code == 0
    assert record.details.finished_at == "2024-05-01T10:00:05Z"
    assert (record.details.job, record.details.pod) == ("build", "widget-abc-build-pod")
    assert record.details.forge_repository == "acme/widget"

    obj = running_task_run(0, 1, condition=("False", "Failed"))
    obj["status"]["steps"][1].update(name="r0", container="step-r0")
    cluster.set_task_run(obj)
    cluster.set_run(condition=("False", "Failed"), completion="2024-05-01T10:00:09Z")
    assert cluster.handle(archiver) is None
    assert cluster.text("r0") == "password ***\n"  # masked across the chunk boundary
    assert archived(cluster.store.run(("team-a", "widget-abc")))  # type: ignore[arg-type]
    assert cluster.archived == ["widget-abc"]
    assert len(cluster.streamed) == 2  # each step read once


def test_a_pod_gone_before_its_log_was_read_is_recorded_lost(cluster: Cluster) -> None:
    cluster.set_task_run(running_task_run(0, 2, condition=("False", "Failed")))
    cluster.set_run(condition=("False", "Failed"), completion="2024-05-01T10:00:09Z")
    assert cluster.handle(cluster.archiver()) is None
    for step in ("s0", "s1"):
        record = read_record(cluster.archive, cluster.key(step))
        assert record is not None and record.lost is not None and "deleted" in record.lost
        assert read_log(cluster.archive, cluster.key(step)) is None
    assert cluster.archived == ["widget-abc"]
    assert '"lost": 2' in cluster.run["metadata"]["annotations"][labels.ARCHIVED]


def test_a_restarted_controller_archives_nothing_twice(cluster: Cluster) -> None:
    cluster.logs["widget-abc-build-pod", "step-s0"] = [b"once\n"]
    cluster.set_task_run(running_task_run(0, condition=("True", "Succeeded")))
    cluster.set_run(condition=("Unknown", "Running"))
    assert cluster.handle(cluster.archiver()) is None
    assert len(cluster.streamed) == 1
    # A new process (no memory) finds the record for this pod and reads no log again.
    cluster.set_run(condition=("True", "Succeeded"), completion="2024-05-01T10:00:09Z")
    assert cluster.handle(cluster.archiver()) is None
    assert len(cluster.streamed) == 1 and cluster.archived == ["widget-abc"]
    # Marked: the next process skips the run at once.
    cluster.handle(cluster.archiver())
    assert len(cluster.api.patches) == 1


def test_a_retried_job_has_its_last_pods_log_archived(cluster: Cluster) -> None:
    archiver = cluster.archiver()
    cluster.logs["first-pod", "step-s0"] = [b"attempt 1\n"]
    cluster.logs["second-pod", "step-s0"] = [b"attempt 2\n"]
    cluster.set_run(condition=("Unknown", "Running"))
    cluster.set_task_run(running_task_run(1, pod="first-pod"))
    cluster.handle(archiver)
    assert cluster.text("s0") == "attempt 1\n"
    cluster.set_task_run(running_task_run(0, pod="second-pod"))
    cluster.handle(archiver)
    assert cluster.text("s0") == "attempt 2\n"


def test_a_failing_store_is_retried_and_nothing_is_marked(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    archiver = cluster.archiver()
    cluster.logs["widget-abc-build-pod", "step-s0"] = [b"x\n"]

    def refuse(name: str, data: Any) -> None:
        raise StoreError("log directory: disk full")

    cluster.archive.put = refuse  # type: ignore[method-assign]
    cluster.set_task_run(running_task_run(0, condition=("True", "Succeeded")))
    cluster.set_run(condition=("True", "Succeeded"), completion="2024-05-01T10:00:09Z")
    assert isinstance(cluster.handle(archiver), Retry)
    assert cluster.api.patches == [] and cluster.archived == []
    # What the "archive falling behind" alert and the dashboard read.
    registry = cluster.metrics.registry
    assert registry.get_sample_value("ferry_archive_pending_steps") == 1.0
    assert registry.get_sample_value("ferry_archive_failures_total") == 1.0
    del cluster.archive.put  # the store is back
    cluster.handle(archiver)
    assert registry.get_sample_value("ferry_archive_pending_steps") == 0.0
    assert cluster.text("s0") == "x\n"


def test_a_run_the_receiver_did_not_bind_is_not_archived(cluster: Cluster) -> None:
    archiver = cluster.archiver()
    cluster.run["metadata"]["annotations"].pop(labels.BINDING)  # hand-made, as a team member
    cluster.logs["widget-abc-build-pod", "step-s0"] = [b"made up\n"]
    cluster.set_task_run(running_task_run(0, condition=("True", "Succeeded")))
    cluster.set_run(condition=("True", "Succeeded"), completion="2024-05-01T10:00:09Z")
    assert cluster.handle(archiver) is None
    assert cluster.streamed == [] and read_record(cluster.archive, cluster.key("s0")) is None
    assert cluster.metrics.registry.get_sample_value(
        "ferry_controller_runs_refused_total", {"reason": "unbound"}) == 1.0


def test_a_run_whose_steps_never_end_is_marked_after_the_grace_period(
        cluster: Cluster) -> None:
    cluster.set_task_run(running_task_run(0, running=1))
    cluster.logs["widget-abc-build-pod", "step-s0"] = [b"x\n"]
    cluster.set_run(condition=("False", "Cancelled"), completion="2024-05-01T10:00:09Z")
    waiting = cluster.archiver(grace=10_000_000_000.0)
    assert isinstance(cluster.handle(waiting), Retry)
    assert cluster.archived == []
    assert cluster.handle(cluster.archiver(grace=0.0)) is None
    record = read_record(cluster.archive, cluster.key("r0"))
    assert record is not None and record.lost is not None
    assert labels.ARCHIVED in cluster.run["metadata"]["annotations"]


def test_a_run_deleted_before_it_was_archived_keeps_what_can_still_be_read(
        cluster: Cluster) -> None:
    archiver = cluster.archiver()
    cluster.logs["widget-abc-build-pod", "step-r0"] = [b"half way\n"]
    cluster.set_run(condition=("Unknown", "Running"))
    cluster.set_task_run(running_task_run(0, running=1))  # s0's pod log is already gone
    cluster.handle(archiver)
    run = cluster.store.run(("team-a", "widget-abc"))
    assert run is not None
    # Deleted by hand mid-run: the running step's log is read while the pod lasts.
    cluster.store.update_run(run, deleted=True)
    assert asyncio.run(archiver.handle(run.key, Observation(run, 0.0, deleted=True), 0)) is None
    assert cluster.text("r0") == "half way\n"
    s0 = read_record(cluster.archive, cluster.key("s0"))
    assert s0 is not None and s0.lost is not None


def test_a_run_seen_while_the_lease_is_not_renewed_is_retried_not_dropped(
        cluster: Cluster) -> None:
    archiver = cluster.archiver()
    cluster.logs["widget-abc-build-pod", "step-s0"] = [b"x\n"]
    cluster.set_task_run(running_task_run(0, condition=("True", "Succeeded")))
    cluster.set_run(condition=("True", "Succeeded"), completion="2024-05-01T10:00:09Z")
    # A Leadership with a lease it has not renewed yet (as a busy machine's first seconds).
    archiver._leadership = Leadership(object(), identity="test",  # type: ignore[arg-type]
                                      settings=controller_defaults().leader)
    assert isinstance(cluster.handle(archiver), Retry)
    assert cluster.streamed == [] and cluster.archived == []
