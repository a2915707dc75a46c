"""Schedules on the real API server: two controllers elect a leader on a real Lease, the test
holds the clock their schedulers read, and every scheduled time gets exactly one RunRequest,
across a failover and an outage (a missed time is started once, on recovery)."""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ci.controller.app import run_controller
from ci.controller.scheduling import Scheduler
from ci.controller.settings import ControllerSettings, LeaderSettings
from ci.kube.connecting import api_client
from ci.kube.leases import Leases
from ci.kube.repositories import Repository
from ci.kube.repository_status import RepositoryStatusWriter
from ci.kube.run_requests import RunRequests
from ci.settings import KubernetesSettings
from tests.cluster.control_plane import ControlPlane
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube, KubeError
from tests.defaults import controller_defaults
from tests.e2e.installation import kubectl

UTC = datetime.UTC
WAIT = 120.0
RUN_REQUESTS = "/apis/ferry.dev/v1alpha1/namespaces/{namespace}/runrequests"
REPOSITORY = "/apis/ferry.dev/v1alpha1/namespaces/{namespace}/repositories/widget"


class Clock:
    """The time the schedulers read; the test moves it."""

    def __init__(self, moment: datetime.datetime) -> None:
        self._lock = threading.Lock()
        self._moment = moment

    def __call__(self) -> datetime.datetime:
        with self._lock:
            return self._moment

    def set(self, moment: datetime.datetime) -> None:
        with self._lock:
            self._moment = moment


@dataclass
class Controller:
    """`run_controller` in a thread, with the test's clock."""

    settings: ControllerSettings
    clock: Clock
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=run_controller, args=(self.settings,),
            kwargs={"stop": self.stop, "clock": self.clock}, daemon=True,
            name=f"controller {self.settings.identity}")
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=60)
            assert not self.thread.is_alive(), f"{self.settings.identity} did not stop"


def _at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _create_repository(kube: Kube, namespace: str) -> None:
    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "widget-forge", "namespace": namespace},
                 "stringData": {"token": "t", "webhook-secret": "s"}})
    kube.create({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "widget", "namespace": namespace},
        "spec": {
            "forge": "github", "url": "https://github.com/acme/widget",
            "secretRef": {"name": "widget-forge"},
            # 03:00 in Berlin: 02:00 UTC in winter.
            "schedules": [{"name": "nightly", "cron": "0 3 * * *", "branch": "main",
                           "timezone": "Europe/Berlin"}],
        },
    })


def _names(kube: Kube, namespace: str) -> list[str]:
    listed = kube.get(RUN_REQUESTS.format(namespace=namespace))["items"]
    return sorted(item["metadata"]["name"] for item in listed)


def _status(kube: Kube, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.get(REPOSITORY.format(namespace=namespace)).get("status") or {}
    return found


def _marked(kube: Kube, namespace: str, last: str, upcoming: str) -> bool:
    """The schedule's status says `last` was started (or first seen) and `upcoming` is next:
    a tick that got this far has made its RunRequest, if any, already."""
    status = _status(kube, namespace)
    entries = status.get("schedules") or []
    return (status.get("nextScheduledRun") == upcoming and len(entries) == 1
            and entries[0].get("lastTime") == last and entries[0].get("nextTime") == upcoming)


@pytest.fixture
def controllers(cluster: ControlPlane, namespace: str) -> Iterator[tuple[Controller, Controller,
                                                                          Clock]]:
    clock = Clock(_at("2026-12-02T01:00:00Z"))

    def settings(identity: str) -> ControllerSettings:
        return controller_defaults(
            kubernetes=KubernetesSettings(kubeconfig=cluster.kubeconfig,
                                          binding_secret_namespace=namespace),  # no ferry-system
            namespaces=(namespace,), identity=identity,
            leader=LeaderSettings(enabled=True, namespace=namespace, name="ferry-controller",
                                  duration=4.0, renew_interval=1.0, retry_interval=0.5),
            schedule_interval=0.2, prune=False, admit=False, workers=2,
        )

    pair = (Controller(settings("one"), clock), Controller(settings("two"), clock))
    yield pair[0], pair[1], clock
    for controller in pair:
        controller.halt()


def _holder(cluster: ControlPlane, namespace: str) -> str | None:
    with api_client(KubernetesSettings(kubeconfig=cluster.kubeconfig)) as client:
        return Leases(client, namespace=namespace, name="ferry-controller", timeout=10).read(
            ).holder


def test_two_controllers_start_each_scheduled_time_once_and_a_missed_one_once_on_recovery(
    cluster: ControlPlane, kube: Kube, namespace: str, cluster_bin_dir: Path,
    controllers: tuple[Controller, Controller, Clock],
) -> None:
    one, two, clock = controllers
    _create_repository(kube, namespace)
    one.start()
    two.start()

    def wait(what: str, last: str, upcoming: str) -> None:
        wait_until(lambda: _marked(kube, namespace, last, upcoming), what=what, timeout=WAIT)

    # First seen at 01:00 UTC: nothing before it is run, 02:00 UTC (03:00 Berlin) is next.
    wait("the schedule seen", "2026-12-02T01:00:00Z", "2026-12-02T02:00:00Z")
    assert _names(kube, namespace) == []

    clock.set(_at("2026-12-02T02:00:30Z"))
    wait("the first time started", "2026-12-02T02:00:00Z", "2026-12-03T02:00:00Z")
    assert _names(kube, namespace) == ["widget-nightly-20261202-0200"]
    [request] = kube.get(RUN_REQUESTS.format(namespace=namespace))["items"]
    assert request["spec"] | {"requestedBy": ""} == {
        "repository": "widget", "event": "schedule", "branch": "main", "schedule": "nightly",
        "scheduledTime": "2026-12-02T02:00:00Z", "requestedBy": ""}
    assert request["spec"]["requestedBy"]  # the API server's name for the controller
    [owner] = request["metadata"]["ownerReferences"]  # deleted with its Repository
    assert (owner["kind"], owner["name"]) == ("Repository", "widget")
    shown = kubectl(cluster_bin_dir, "get", "repositories", "-n", namespace,
                    kubeconfig=cluster.kubeconfig)
    [header, row] = shown.splitlines()
    column = header.index("NEXT-RUN")  # kubectl aligns each value under its column's name
    assert row[column:].split()[0] == "2026-12-03T02:00:00Z", shown

    # The leader goes away and the clock runs past three more times (Dec 3, 4 and 5) before
    # the other takes over: one run, for the latest, not three.
    holder = _holder(cluster, namespace)
    leader, standby = (one, two) if holder == "one" else (two, one)
    assert holder == leader.settings.identity
    leader.halt()
    clock.set(_at("2026-12-05T02:10:00Z"))
    wait("the missed times caught up once", "2026-12-05T02:00:00Z", "2026-12-06T02:00:00Z")
    assert _holder(cluster, namespace) == standby.settings.identity
    assert _names(kube, namespace) == ["widget-nightly-20261202-0200",
                                       "widget-nightly-20261205-0200"]

    # Both running again, one leading: the next time once more exactly once.
    leader.start()
    clock.set(_at("2026-12-06T02:00:05Z"))
    wait("the next time started", "2026-12-06T02:00:00Z", "2026-12-07T02:00:00Z")
    assert _names(kube, namespace) == ["widget-nightly-20261202-0200",
                                       "widget-nightly-20261205-0200",
                                       "widget-nightly-20261206-0200"]


class _AlwaysLeading:
    def held(self) -> bool:
        return True


def test_two_schedulers_that_both_think_they_lead_still_make_one_run_request(
    cluster: ControlPlane, kube: Kube, namespace: str
) -> None:
    """The name is the guarantee even without the Lease (a leader whose lease lapsed while
    it was writing): the second create is a 409 and starts nothing."""
    _create_repository(kube, namespace)
    obj = kube.get(REPOSITORY.format(namespace=namespace))
    seen = Repository.from_object(obj)
    marked = Repository.from_object(obj | {"status": {"schedules": [
        {"name": "nightly", "cron": "0 3 * * *", "lastTime": "2026-12-01T02:00:00Z"}]}})
    clock = Clock(_at("2026-12-02T02:00:30Z"))
    created: list[bool] = []

    class Recording(RunRequests):
        def create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
            result = super().create(body)
            created.append(result[1])
            return result

    with api_client(KubernetesSettings(kubeconfig=cluster.kubeconfig)) as client:
        requests = Recording(client, request_timeout=10.0)
        writer = RepositoryStatusWriter(client, request_timeout=10.0)
        me = requests.whoami()  # what the admission policy wants in requestedBy

        class Source:
            def all(self) -> tuple[Repository, ...]:
                return (marked,)

        schedulers = [
            Scheduler(repositories=Source(), requests=requests,
                      write_status=writer.write_schedules, leadership=_AlwaysLeading(),
                      clock=clock, requester=lambda: me, interval=0.1)
            for _ in range(2)
        ]

        async def both() -> None:
            await asyncio.gather(*(scheduler.tick() for scheduler in schedulers))

        asyncio.run(both())
    assert seen.schedules[0].name == "nightly"
    assert sorted(created) == [False, True]
    assert _names(kube, namespace) == ["widget-nightly-20261202-0200"]


def _refusal(kube: Kube, obj: dict[str, Any]) -> str:
    try:
        kube.create(obj)
    except KubeError as error:
        assert error.status == 422, error.body
        return error.body
    raise AssertionError(f"the API server accepted {obj}")


def _run_request(kube: Kube, namespace: str, **spec: Any) -> dict[str, Any]:
    # Its creator, as the admission policy (when deploy/ is installed) wants it.
    me = RunRequests(kube.api_client, request_timeout=10.0).whoami()
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "RunRequest",
            "metadata": {"generateName": "widget-manual-", "namespace": namespace},
            "spec": {"repository": "widget", "event": "manual", "requestedBy": me, **spec}}


def test_the_crds_refuse_malformed_schedules_and_run_requests(kube: Kube, namespace: str
                                                             ) -> None:
    repository = {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": "widget", "namespace": namespace},
        "spec": {"forge": "github", "url": "https://github.com/acme/widget",
                 "secretRef": {"name": "widget-forge"}},
    }

    def schedules(*entries: dict[str, str]) -> dict[str, Any]:
        return repository | {"spec": repository["spec"] | {"schedules": list(entries)}}

    nightly = {"name": "nightly", "cron": "0 3 * * *", "branch": "main"}
    assert "Duplicate value" in _refusal(kube, schedules(nightly, nightly))
    assert "schedules[0].cron" in _refusal(kube, schedules(nightly | {"cron": "every night"}))
    assert "schedules[0].name" in _refusal(kube, schedules(nightly | {"name": "Nightly!"}))
    assert "schedules[0].branch" in _refusal(kube, schedules({"name": "x", "cron": "@daily"}))
    created = kube.create(schedules(nightly | {"cron": "@daily"}))
    assert created["spec"]["schedules"][0]["timezone"] == "UTC"  # the default

    assert "at most one of spec.branch and spec.sha" in _refusal(
        kube, _run_request(kube, namespace, branch="main", sha="a" * 40))
    assert "spec.sha" in _refusal(kube, _run_request(kube, namespace, sha="abc123"))
    assert "parameter names are letters" in _refusal(
        kube, _run_request(kube, namespace, branch="main", params={"BAD-NAME": "x"}))
    assert "names its schedule and scheduledTime" in _refusal(
        kube, _run_request(kube, namespace, branch="main", event="schedule"))
    made = kube.create(_run_request(kube, namespace, branch="main", params={"TARGET": "staging"}))
    path = f"{RUN_REQUESTS.format(namespace=namespace)}/{made['metadata']['name']}"
    try:
        kube.request("PATCH", path, body={"spec": {"branch": "other"}},
                     content_type="application/merge-patch+json")
    except KubeError as error:
        assert error.status == 422
        assert "a RunRequest's spec cannot be changed" in error.body
    else:
        raise AssertionError("the API server let a RunRequest's spec change")
