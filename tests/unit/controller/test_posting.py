"""The delivery path of a report in doubt: read back from the forge before sending again.

A controller killed after the forge accepted a status but before it wrote the
acknowledgement leaves a `sending` entry of its incarnation on the run. These tests make that
state for real (a first Poster reports, then its acknowledgement is undone as a SIGKILL
would have left it) and hand the run to a second incarnation.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from kubernetes.client.exceptions import ApiException

from ci.controller import posting
from ci.controller.leadership import Leadership
from ci.controller.logs import LogTails
from ci.controller.metrics import ControllerMetrics
from ci.controller.posting import LAGGING_TASK_RUN_DELAY, Poster
from ci.controller.reporting import RUN_REPORT, Memory
from ci.controller.retrying import Retry
from ci.controller.runs import RunSnapshot, TaskRunSnapshot
from ci.controller.store import Observation, RunStore
from ci.controller.verification import RunVerifier
from ci.forges import checks
from ci.forges.client import GitHubAppCredentials
from ci.forges.github.client import GitHubClient
from ci.forges.statuses import Conclusion
from ci.forges.types import ForgeKind, InstallationId, RepositoryName
from ci.kube import labels
from ci.kube.credentials import CredentialsCache
from ci.kube.pods import LogReader
from ci.kube.repositories import RepositoryIndex
from ci.repository_forges import RepositoryForges
from tests.binding import TEST_KEYS, bound
from tests.defaults import controller_defaults
from tests.fakeforge import FakeForge
from tests.fakeforge.connecting import connected
from tests.unit.controller.builders import pipeline_run, task_run

pytestmark = pytest.mark.anyio

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"  # the builders' run
OWNER_NAME = "acme/widget"


class FakeCustomObjects:
    """The two CustomObjectsApi calls `ci.kube.patching` makes, on one stored run."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.run = run
        self.annotations_written: list[str] = []

    def patch_namespaced_custom_object(self, *args: Any, **_: Any) -> dict[str, Any]:
        body: Mapping[str, Any] = args[5]
        metadata = self.run["metadata"]
        # Unit tests have no concurrent writers: every patch applies.
        metadata["annotations"].update(body["metadata"]["annotations"])
        metadata["resourceVersion"] = str(int(metadata["resourceVersion"]) + 1)
        self.annotations_written.append(metadata["annotations"][labels.REPORTED])
        return copy.deepcopy(self.run)

    def get_namespaced_custom_object(self, *_: Any, **__: Any) -> dict[str, Any]:
        return copy.deepcopy(self.run)


@dataclass
class Incarnation:
    """One controller process's Poster, over the shared run and forge."""

    api: FakeCustomObjects
    poster: Poster
    metrics: ControllerMetrics
    finals: list[str] = field(default_factory=list)

    async def handle(self) -> Retry | None:
        snapshot = RunSnapshot.of(copy.deepcopy(self.api.run))
        return await self.poster.handle(
            snapshot.key, Observation(run=snapshot, seen=time.time()), attempt=0
        )

    def counted(self, name: str, **labels_: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels_ or None)
        return value or 0.0


def incarnation(api: FakeCustomObjects, forge: FakeForge, http: httpx.AsyncClient,
                name: str, *, app_key: str | None = None,
                forge_timeout: float | None = None, store: RunStore | None = None,
                read_log: LogReader | None = None) -> Incarnation:
    """`app_key`: a GitHub App's private key (PEM): report check runs, as App mode does.
    `forge_timeout`: seconds for one forge call (the settings' default if None). `store`:
    the watch's cache, with the run's TaskRuns (none if None); `read_log`: the pods' logs."""
    repositories = RepositoryIndex()
    spec: dict[str, Any] = {"forge": "github", "url": f"https://github.com/{OWNER_NAME}",
                            "apiURL": forge.api_url, "secretRef": {"name": "widget-forge"}}
    secret = {"token": "test-token"}
    if app_key is not None:
        spec["githubApp"] = {"appID": 4242, "installationID": 77}
        secret = {"private-key": app_key}
    repository = {"metadata": {"name": "widget", "namespace": "team", "uid": "uid-widget"},
                  "spec": spec}
    repositories.on_relist([repository])
    # Signed as the receiver signs runs; only runs it signed are reported.
    api.run = bound(api.run, repository)
    metrics = ControllerMetrics()
    finals: list[str] = []
    poster = Poster(
        api=api,
        store=store if store is not None else RunStore(lambda observations: None),
        repositories=repositories,
        forges=RepositoryForges(CredentialsCache(lambda namespace, name: secret), http),
        log_tails=LogTails(read_log=read_log or (lambda *_: ""), read_secret=lambda *_: None,
                           lines=40),
        leadership=Leadership(None, identity=name, settings=controller_defaults().leader),
        metrics=metrics,
        settings=controller_defaults(
            details_url_template="https://dash/{namespace}/{name}",
            **({"forge_timeout": forge_timeout} if forge_timeout is not None else {})),
        incarnation=name,
        on_final=lambda run, repository: finals.append(run.name),
        verifier=RunVerifier(lambda: TEST_KEYS, window=300.0, metrics=metrics),
    )
    return Incarnation(api=api, poster=poster, metrics=metrics, finals=finals)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def forge() -> FakeForge:
    return FakeForge(ForgeKind.GITHUB)


@pytest.fixture
async def http(forge: FakeForge) -> AsyncIterator[httpx.AsyncClient]:
    async with connected(forge) as client:
        yield client


def finished_run(jobs: tuple[str, ...] = ("build", "test")) -> dict[str, Any]:
    return pipeline_run(condition=("True", "Succeeded"), completion="2024-05-01T10:01:00Z",
                        jobs=jobs)


# Commit statuses (token mode): the exactly-once protocol on the run's own report, of a run
# without jobs (each job's report follows the same protocol under its own key).


async def killed_after_the_forge_answered(
    api: FakeCustomObjects, forge: FakeForge, http: httpx.AsyncClient, *, delivered: bool
) -> None:
    """Leave the run as a SIGKILL between the forge call and the acknowledgement does
    (`delivered`), or between the write-ahead and the forge call (not `delivered`)."""
    old = incarnation(api, forge, http, "old")
    assert await old.handle() is None
    write_ahead = json.loads(api.annotations_written[0])
    assert write_ahead["sending"] == {RUN_REPORT: ["success", "old"]}
    api.run["metadata"]["annotations"][labels.REPORTED] = api.annotations_written[0]
    if not delivered:
        forge.statuses.clear()
    forge.requests.clear()


def posted_states(forge: FakeForge) -> list[str]:
    return [status["state"] for status in forge.statuses_for(OWNER_NAME, SHA)]


def assert_recovered_without_sending(forge: FakeForge, api: FakeCustomObjects,
                                     poster: Incarnation) -> None:
    """The forge showed the run's "success": acknowledged after one read, never posted again."""
    assert posted_states(forge) == ["success"]  # not repeated
    assert [request.method for request in forge.requests] == ["GET"]
    memory = Memory.of_annotations(api.run["metadata"]["annotations"])
    assert memory.acknowledged[RUN_REPORT].conclusion is Conclusion.SUCCESS
    assert (memory.sending, memory.doubts) == ({}, ())
    assert poster.counted("ferry_controller_reports_recovered_total", forge="github") == 1


async def test_a_status_the_forge_already_shows_is_acknowledged_without_sending(
    forge: FakeForge, http: httpx.AsyncClient
) -> None:
    api = FakeCustomObjects(finished_run(jobs=()))
    await killed_after_the_forge_answered(api, forge, http, delivered=True)
    new = incarnation(api, forge, http, "new")
    assert await new.handle() is None
    assert_recovered_without_sending(forge, api, new)
    assert new.counted("ferry_controller_reports_in_doubt_total") == 0
    assert new.finals == ["widget-abc"]


async def test_a_status_the_forge_lacks_is_sent_without_doubt(
    forge: FakeForge, http: httpx.AsyncClient
) -> None:
    api = FakeCustomObjects(finished_run(jobs=()))
    await killed_after_the_forge_answered(api, forge, http, delivered=False)
    new = incarnation(api, forge, http, "new")
    assert await new.handle() is None
    assert posted_states(forge) == ["success"]
    assert [request.method for request in forge.requests] == ["GET", "POST"]
    memory = Memory.of_annotations(api.run["metadata"]["annotations"])
    assert memory.acknowledged[RUN_REPORT].conclusion is Conclusion.SUCCESS
    assert memory.doubts == ()
    assert new.counted("ferry_controller_reports_recovered_total", forge="github") == 0


async def test_a_status_sent_without_an_answer_is_read_back_not_posted_twice(
    forge: FakeForge, http: httpx.AsyncClient
) -> None:
    """The forge stores the status but answers after the controller gave up waiting (a
    timeout): the retry, in the same process, finds it there and sends nothing."""
    api = FakeCustomObjects(finished_run(jobs=()))
    poster = incarnation(api, forge, http, "only", forge_timeout=0.2)
    forge.faults.hold = 1.0
    retry = await poster.handle()
    assert isinstance(retry, Retry)  # the send timed out
    assert posted_states(forge) == ["success"]  # but the forge has it
    forge.faults.hold = 0.0
    forge.requests.clear()
    assert await poster.handle() is None
    assert_recovered_without_sending(forge, api, poster)


async def test_an_older_status_of_the_context_is_not_this_report(
    forge: FakeForge, http: httpx.AsyncClient
) -> None:
    # Killed after "running" was acknowledged and "success" written ahead, before it was sent:
    # the forge's newest status is pending, so success goes out, once.
    api = FakeCustomObjects(pipeline_run(condition=("Unknown", "Running"), jobs=()))
    old = incarnation(api, forge, http, "old")
    assert await old.handle() is None
    api.run["status"] = finished_run()["status"]
    assert await old.handle() is None
    api.run["metadata"]["annotations"][labels.REPORTED] = api.annotations_written[-2]
    forge.statuses[(OWNER_NAME, SHA)].pop()
    new = incarnation(api, forge, http, "new")
    assert await new.handle() is None
    assert posted_states(forge) == ["pending", "success"]


async def test_commit_statuses_report_each_job_as_check_runs_do(
    forge: FakeForge, http: httpx.AsyncClient
) -> None:
    """Token mode (and Gitea, GitLab): a status per job besides the run's, as the local
    backend posts, so a branch protection rule can require a single job's check."""
    api = FakeCustomObjects(pipeline_run(condition=("Unknown", "Running"), jobs=("build",)))
    controller = incarnation(api, forge, http, "only")
    assert await controller.handle() is None
    api.run["status"] = finished_run(jobs=("build",))["status"]
    assert await controller.handle() is None
    shown = [(s["context"], s["state"], s["description"])
             for s in forge.statuses_for(OWNER_NAME, SHA)]
    assert shown == [("ferry/build", "pending", "Queued"), ("ferry", "pending", "Running"),
                     ("ferry/build", "success", "Skipped"), ("ferry", "success",
                                                            "Succeeded in 1m 0s")]


async def test_a_failing_read_back_is_retried_and_a_refused_one_sends_in_doubt(
    forge: FakeForge, http: httpx.AsyncClient
) -> None:
    api = FakeCustomObjects(finished_run(jobs=()))
    await killed_after_the_forge_answered(api, forge, http, delivered=True)
    ahead = api.run["metadata"]["annotations"][labels.REPORTED]
    new = incarnation(api, forge, http, "new")

    forge.faults.fail_next(500)
    assert isinstance(await new.handle(), Retry)
    assert api.run["metadata"]["annotations"][labels.REPORTED] == ahead  # nothing written
    assert new.counted("ferry_controller_report_retries_total", forge="github",
                       status="500") == 1

    # A refusal is not retried; not knowing, the controller sends (a repeat, not a loss).
    forge.faults.fail_next(403)
    assert await new.handle() is None
    assert posted_states(forge) == ["success", "success"]
    memory = Memory.of_annotations(api.run["metadata"]["annotations"])
    assert memory.doubts == ("run=success",)
    assert new.counted("ferry_controller_reports_in_doubt_total") == 1
    assert new.counted("ferry_controller_report_rejections_total", forge="github",
                       status="403") == 1


class BusyCustomObjects(FakeCustomObjects):
    """A run another writer (Tekton) keeps changing: the next `conflicts` guarded patches
    meet a newer version (409), as on a busy API server."""

    def __init__(self, run: dict[str, Any]) -> None:
        super().__init__(run)
        self.conflicts = 0

    def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self.conflicts > 0 and "resourceVersion" in args[5]["metadata"]:
            self.conflicts -= 1
            raise ApiException(status=409, reason="Conflict")
        return super().patch_namespaced_custom_object(*args, **kwargs)


async def test_an_acknowledgement_that_cannot_be_saved_yet_is_kept_not_resent(
    forge: FakeForge, http: httpx.AsyncClient
) -> None:
    api = BusyCustomObjects(finished_run(jobs=()))
    controller = incarnation(api, forge, http, "only")
    # The write-ahead is saved; then the forge accepts the status, and every attempt to
    # save its acknowledgement meets a newer version.
    original = controller.poster._save  # the seam this test is about

    async def save(run: Any, memory: Memory, *, base: Memory | None) -> Any:
        if base is None:
            api.conflicts = 1_000
        return await original(run, memory, base=base)

    controller.poster._save = save  # type: ignore[method-assign]
    assert isinstance(await controller.handle(), Retry)
    assert posted_states(forge) == ["success"]
    # The API server calms down; the retry saves what the forge acknowledged, and sends
    # nothing again.
    api.conflicts = 0
    controller.poster._save = original  # type: ignore[method-assign]
    forge.requests.clear()
    assert await controller.handle() is None
    assert posted_states(forge) == ["success"]
    assert [request.method for request in forge.requests] == []
    memory = Memory.of_annotations(api.run["metadata"]["annotations"])
    assert memory.acknowledged[RUN_REPORT].conclusion is Conclusion.SUCCESS


# GitHub App mode: check runs, found again by name and external id


@pytest.fixture
def app_forge(forge: FakeForge, app_keys: tuple[str, str]) -> FakeForge:
    forge.app_id, forge.app_public_key = "4242", app_keys[1]
    return forge


def check_runs(forge: FakeForge) -> dict[str, list[tuple[str, str | None]]]:
    """Each check run name -> its check runs' (status, conclusion), oldest first."""
    found: dict[str, list[tuple[str, str | None]]] = {}
    for run in sorted(forge.check_runs.values(), key=lambda run: run["id"]):
        found.setdefault(run["name"], []).append((run["status"], run.get("conclusion")))
    return found


def creations(forge: FakeForge) -> int:
    return sum(1 for r in forge.requests if r.method == "POST" and r.path.endswith("/check-runs"))


@pytest.mark.parametrize("delivered", [True, False], ids=["delivered", "never-arrived"])
async def test_a_check_run_whose_creation_is_in_doubt_is_looked_up_not_created_twice(
    app_forge: FakeForge, http: httpx.AsyncClient, app_keys: tuple[str, str], delivered: bool
) -> None:
    api = FakeCustomObjects(finished_run())
    old = incarnation(api, app_forge, http, "old", app_key=app_keys[0])
    assert await old.handle() is None
    # A SIGKILL after the first write-ahead: nothing acknowledged, every check run in doubt.
    api.run["metadata"]["annotations"][labels.REPORTED] = api.annotations_written[0]
    assert json.loads(api.annotations_written[0])["sending"]
    if not delivered:
        app_forge.check_runs.clear()
    app_forge.requests.clear()
    new = incarnation(api, app_forge, http, "new", app_key=app_keys[0])
    assert await new.handle() is None
    expected = {"ferry": [("completed", "success")],
                "ferry/build": [("completed", "skipped")],  # no TaskRuns in a unit test
                "ferry/test": [("completed", "skipped")]}
    assert check_runs(app_forge) == expected  # one of each, however the kill fell
    assert creations(app_forge) == (0 if delivered else 3)
    memory = Memory.of_annotations(api.run["metadata"]["annotations"])
    assert (memory.sending, memory.doubts) == ({}, ())
    # The check runs found are remembered by id: the next report updates them.
    by_name = {run["name"]: str(run["id"]) for run in app_forge.check_runs.values()}
    assert memory.acknowledged[RUN_REPORT].report_id == by_name["ferry"]
    recovered = new.counted("ferry_controller_reports_recovered_total", forge="github")
    assert recovered == (3 if delivered else 0)
    assert new.counted("ferry_controller_reports_in_doubt_total") == 0


async def test_a_check_run_created_before_a_kill_is_updated_when_the_run_moved_on(
    app_forge: FakeForge, http: httpx.AsyncClient, app_keys: tuple[str, str]
) -> None:
    # The creation of "running" reached GitHub, the kill came before its acknowledgement was
    # saved, and the run finished meanwhile: the plan is "success" for a check run with no
    # id yet; it is found ("running") and updated, not created a second time.
    api = FakeCustomObjects(pipeline_run(condition=("Unknown", "Running")))
    old = incarnation(api, app_forge, http, "old", app_key=app_keys[0])
    assert await old.handle() is None
    api.run["metadata"]["annotations"][labels.REPORTED] = api.annotations_written[0]
    api.run["status"] = finished_run()["status"]
    app_forge.requests.clear()
    new = incarnation(api, app_forge, http, "new", app_key=app_keys[0])
    assert await new.handle() is None
    assert check_runs(app_forge)["ferry"] == [("completed", "success")]
    assert creations(app_forge) == 0
    memory = Memory.of_annotations(api.run["metadata"]["annotations"])
    assert memory.doubts == ()


async def test_a_run_whose_signed_fields_were_changed_is_never_reported(
    forge: FakeForge, http: httpx.AsyncClient
) -> None:
    api = FakeCustomObjects(finished_run())
    poster = incarnation(api, forge, http, "first")
    other_sha = "0" * 40
    api.run["metadata"]["annotations"][labels.SHA] = other_sha  # after the receiver signed it
    assert await poster.handle() is None
    assert forge.statuses_for(OWNER_NAME, other_sha) == []
    assert forge.statuses_for(OWNER_NAME, SHA) == []
    assert api.annotations_written == []
    assert poster.counted("ferry_controller_runs_refused_total", reason="forged") == 1.0


# The receiver's "waiting" check run, taken over by the run's first report


async def post_waiting(forge: FakeForge, http: httpx.AsyncClient, private_key: str, *,
                       completed: bool = False) -> int:
    """The receiver's waiting check run at the run's commit, as the receiver posts it (and,
    `completed`, as a newer push left it: superseded)."""
    client = GitHubClient(http, api_url=forge.api_url, credentials=GitHubAppCredentials(
        app_id="4242", private_key=private_key, installation_id=InstallationId(77)))
    repository = RepositoryName(OWNER_NAME)
    identifier = await client.report_status(
        repository, SHA, checks.waiting(checks.Contexts(), "waiting for a maintainer"))
    if completed:
        await client.report_status(repository, SHA,
                                   checks.superseded_waiting(checks.Contexts(), "9" * 40),
                                   report_id=identifier)
    forge.requests.clear()
    return int(str(identifier))


async def test_the_runs_first_report_takes_the_waiting_check_run_over(
    app_forge: FakeForge, http: httpx.AsyncClient, app_keys: tuple[str, str]
) -> None:
    waiting = await post_waiting(app_forge, http, app_keys[0])
    api = FakeCustomObjects(pipeline_run(condition=("Unknown", "Running")))
    controller = incarnation(api, app_forge, http, "only", app_key=app_keys[0])
    assert await controller.handle() is None
    api.run["status"] = finished_run()["status"]
    assert await controller.handle() is None

    [run_check] = [run for run in app_forge.check_runs.values() if run["name"] == "ferry"]
    assert run_check["id"] == waiting  # updated in place: no second `ferry` check run
    assert (run_check["status"], run_check["conclusion"]) == ("completed", "success")
    assert run_check["external_id"] == f"{api.run['metadata']['uid']}/run"
    memory = Memory.of_annotations(api.run["metadata"]["annotations"])
    assert memory.acknowledged[RUN_REPORT].report_id == str(waiting)
    # Asked once, before the first report; the jobs' check runs are created as ever.
    lookups = [r for r in app_forge.requests
               if r.method == "GET" and r.path.endswith("/check-runs")]
    assert len(lookups) == 1 and creations(app_forge) == 2


async def test_a_completed_waiting_check_run_is_left_as_it_is(
    app_forge: FakeForge, http: httpx.AsyncClient, app_keys: tuple[str, str]
) -> None:
    waiting = await post_waiting(app_forge, http, app_keys[0], completed=True)
    api = FakeCustomObjects(finished_run())
    controller = incarnation(api, app_forge, http, "only", app_key=app_keys[0])
    assert await controller.handle() is None
    runs = sorted((run for run in app_forge.check_runs.values() if run["name"] == "ferry"),
                  key=lambda run: run["id"])
    assert [(run["id"], run["conclusion"]) for run in runs] == [
        (waiting, "cancelled"), (runs[1]["id"], "success")]
    assert runs[1]["id"] != waiting


# A run whose final update reaches the watch before its TaskRun's (two separate streams)


def failed_build(api: FakeCustomObjects, store: RunStore, *, ended: bool) -> None:
    """The run failed; its build TaskRun as the TaskRun watch shows it: still running, or
    `ended` with its second step's exit code 3."""
    store.remember(RunSnapshot.of(api.run))
    build = (task_run(condition=("False", "Failed"), exit_codes=(0, 3),
                      completion="2024-05-01T10:00:59Z") if ended else task_run())
    store.update_task_run(TaskRunSnapshot.of(build), deleted=False)


def build_check_text(forge: FakeForge) -> str:
    build = [run for run in forge.check_runs.values() if run["name"] == "ferry/build"]
    assert [(run["status"], run["conclusion"]) for run in build] == [("completed", "failure")]
    return str(build[0]["output"]["text"])


async def test_a_failed_run_waits_for_its_task_runs_end_to_show_the_failing_steps_log(
    app_forge: FakeForge, http: httpx.AsyncClient, app_keys: tuple[str, str]
) -> None:
    api = FakeCustomObjects(pipeline_run(condition=("False", "Failed"), jobs=("build",),
                                         completion="2024-05-01T10:01:00Z"))
    store = RunStore(lambda observations: None)
    poster = incarnation(api, app_forge, http, "one", app_key=app_keys[0], store=store,
                         read_log=lambda *_: "FAILED: 2 of 9 tests")
    failed_build(api, store, ended=False)
    assert await poster.handle() == Retry(LAGGING_TASK_RUN_DELAY)
    assert app_forge.check_runs == {}  # nothing that would stay stale is sent
    failed_build(api, store, ended=True)
    assert await poster.handle() is None
    text = build_check_text(app_forge)
    assert "build: Failed" in text and "FAILED: 2 of 9 tests" in text  # its own, whole
    assert "build: Running" not in text
    assert poster.finals == ["widget-abc"]


async def test_a_task_run_that_never_ends_holds_the_report_back_only_so_long(
    app_forge: FakeForge, http: httpx.AsyncClient, app_keys: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeCustomObjects(pipeline_run(condition=("False", "Failed"), jobs=("build",),
                                         completion="2024-05-01T10:01:00Z"))
    store = RunStore(lambda observations: None)
    poster = incarnation(api, app_forge, http, "one", app_key=app_keys[0], store=store)
    failed_build(api, store, ended=False)
    assert await poster.handle() == Retry(LAGGING_TASK_RUN_DELAY)
    monkeypatch.setattr(posting, "LAGGING_TASK_RUN_LIMIT", 0.0)
    assert await poster.handle() is None
    assert "build: Running" in build_check_text(app_forge)  # as it was: better than never
