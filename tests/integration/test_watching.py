"""`ci.kube.watching.Watcher` against the real API server: order, 410 Gone, stop, restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from kubernetes.client import CustomObjectsApi

from ci.kube.errors import WatchStoppedError
from ci.kube.resources import REPOSITORY
from ci.kube.watching import EventType, Watcher, WatchEvent, WatchSettings, run_in_thread, whole
from tests.cluster.control_plane import ControlPlane
from tests.cluster.processes import wait_until
from tests.cluster.resources import Kube

WAIT = 60.0
STOP_WAIT = 10.0  # a stopped watch must end long before its server timeout (240 s)


class Recorder:
    """A consumer that keeps everything, for assertions from the test thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.relists: list[list[str]] = []
        self.events: list[tuple[EventType, str, str]] = []  # type, name, marker

    def on_relist(self, objects: Sequence[dict[str, Any]]) -> None:
        with self.lock:
            self.relists.append(sorted(o["metadata"]["name"] for o in objects))

    def on_event(self, event: WatchEvent[dict[str, Any]]) -> None:
        marker = (event.object.get("spec") or {}).get("specPath", "")
        with self.lock:
            self.events.append((event.type, event.object["metadata"]["name"], marker))

    def markers(self, name: str) -> list[str]:
        with self.lock:
            return [m for t, n, m in self.events if n == name and t == EventType.MODIFIED]


def _repository(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Repository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"forge": "github", "url": f"https://github.com/acme/{name}",
                 "secretRef": {"name": "s"}},
    }


def _path(namespace: str, name: str) -> str:
    return f"/apis/ferry.dev/v1alpha1/namespaces/{namespace}/repositories/{name}"


def _mark(kube: Kube, namespace: str, name: str, marker: str) -> None:
    kube.merge_patch(_path(namespace, name), {"spec": {"specPath": marker}})


@pytest.fixture
def custom_objects(cluster: ControlPlane) -> Any:
    client = cluster.api_client()
    yield CustomObjectsApi(client)
    client.close()


def _watcher(api: Any, recorder: Recorder, namespace: str, *,
             stream_lists: bool = True) -> Watcher:
    settings = WatchSettings(server_timeout=30, backoff=(0.05, 0.1, 0.2),
                             stream_lists=stream_lists)
    return Watcher(api=api, kind=REPOSITORY, consumer=recorder, convert=whole,
                   settings=settings, namespace=namespace)


@pytest.mark.parametrize("stream_lists", [True, False], ids=["streamed list", "paged list"])
def test_events_arrive_in_order(kube: Kube, namespace: str, custom_objects: Any,
                                stream_lists: bool) -> None:
    kube.create(_repository(namespace, "existing"))
    kube.create(_repository(namespace, "also-existing"))
    recorder = Recorder()
    watcher = _watcher(custom_objects, recorder, namespace, stream_lists=stream_lists)
    thread = run_in_thread(watcher, name="test watch")
    try:
        wait_until(lambda: recorder.relists == [["also-existing", "existing"]],
                   what="first list", timeout=WAIT)
        # This API server (1.34) streams lists: the watcher found it out, or was told not to.
        assert watcher.streams_lists is stream_lists
        kube.create(_repository(namespace, "new"))
        markers = [f"m{index}" for index in range(20)]
        for marker in markers:
            _mark(kube, namespace, "new", marker)
        kube.delete(_path(namespace, "new"))
        wait_until(lambda: any(t == EventType.DELETED for t, _, _ in recorder.events),
                   what="deletion", timeout=WAIT)
    finally:
        watcher.stop()
        thread.join(STOP_WAIT)
    assert not thread.is_alive(), "stop() ends the watch at once"
    assert recorder.events[0][:2] == (EventType.ADDED, "new")
    assert recorder.markers("new") == markers
    assert recorder.events[-1][:2] == (EventType.DELETED, "new")
    assert watcher.restarts == 0


def test_a_410_relists_and_loses_no_transition(
    kube: Kube, namespace: str, custom_objects: Any
) -> None:
    kube.create(_repository(namespace, "moving"))
    _mark(kube, namespace, "moving", "before")
    recorder = Recorder()
    watcher = _watcher(custom_objects, recorder, namespace)
    done = threading.Event()

    def resume_from_an_ancient_version() -> None:
        # Version "1" is long compacted away: the API server answers 410 Gone and the
        # watcher must list again; the list shows the state reached meanwhile.
        try:
            watcher.list_and_watch(since="1")
        except WatchStoppedError:
            pass
        finally:
            done.set()

    thread = threading.Thread(target=resume_from_an_ancient_version, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(recorder.relists) == 1, what="relist after 410", timeout=WAIT)
        assert watcher.restarts == 1, "the 410 counts as a restart"
        for marker in ("after-1", "after-2", "after-3"):
            _mark(kube, namespace, "moving", marker)
        wait_until(lambda: recorder.markers("moving")[-1:] == ["after-3"],
                   what="transitions after the relist", timeout=WAIT)
    finally:
        watcher.stop()
        thread.join(STOP_WAIT)
    assert done.is_set()
    assert recorder.relists == [["moving"]]
    assert recorder.markers("moving") == ["after-1", "after-2", "after-3"]


def test_stop_returns_promptly_while_idle(namespace: str, custom_objects: Any) -> None:
    recorder = Recorder()
    watcher = _watcher(custom_objects, recorder, namespace)
    thread = run_in_thread(watcher, name="idle watch")
    wait_until(lambda: recorder.relists == [[]], what="first list", timeout=WAIT)
    time.sleep(0.5)  # let the watch request reach the server and block on its stream
    started = time.monotonic()
    watcher.stop()
    stopped = time.monotonic() - started
    thread.join(STOP_WAIT)
    assert not thread.is_alive(), f"still watching {time.monotonic() - started:.1f}s after stop()"
    assert stopped < STOP_WAIT, f"stop() took {stopped:.1f}s"


def test_failures_reconnect_and_count_restarts(kube: Kube, namespace: str,
                                               custom_objects: Any) -> None:
    class Flaky:
        """The client's transport: fails the first two requests (a streamed list's or a
        page's, whichever the watcher asks first), then is the real one."""

        def __init__(self, real: Any) -> None:
            self.real, self.failures = real, 2

        def request(self, *args: Any, **kwargs: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("injected")
            return self.real.request(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:  # the rest (closing its pool) as it is
            return getattr(self.real, name)

    client = custom_objects.api_client  # the watcher's own client, not the test's
    client.rest_client = Flaky(client.rest_client)
    kube.create(_repository(namespace, "steady"))
    recorder = Recorder()
    watcher = _watcher(custom_objects, recorder, namespace)
    thread = run_in_thread(watcher, name="flaky watch")
    try:
        wait_until(lambda: recorder.relists == [["steady"]], what="list after failures",
                   timeout=WAIT)
        _mark(kube, namespace, "steady", "seen")
        wait_until(lambda: recorder.markers("steady") == ["seen"], what="event", timeout=WAIT)
    finally:
        watcher.stop()
        thread.join(STOP_WAIT)
    assert watcher.restarts == 2
