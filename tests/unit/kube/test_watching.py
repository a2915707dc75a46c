"""The watch loop (`ci.kube.watching.Watcher`) against a scripted API: paged lists, events in
order, bookmarks, 410 Gone, a silent connection, errors, stop. The same loop runs against the
real API server in tests/integration/test_watching.py; these cover each turn of the loop
without the Go-built cluster, through the Watcher's public calls only."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from ci.kube.errors import WatchStoppedError
from ci.kube.resources import REPOSITORY
from ci.kube.watching import EventType, Watcher, WatchEvent, WatchSettings, run_in_thread, whole
from tests.cluster.processes import wait_until

WAIT = 5.0  # seconds; every script here ends in milliseconds
# Paged lists, as from an API server that does not stream them (the streamed tests at the end
# use STREAMED).
SETTINGS = WatchSettings(server_timeout=30, inactivity_timeout=7.0, connect_timeout=3.0,
                         backoff=(0.01,), page_size=2, stream_lists=False)
# For scripts with no failure in them: a failure would wait a minute, so the test fails.
NO_FAILURE = WatchSettings(server_timeout=30, inactivity_timeout=7.0, connect_timeout=3.0,
                           backoff=(60.0,), page_size=2, stream_lists=False)
STREAMED = replace(SETTINGS, stream_lists=True)
Obj = dict[str, Any]


def repository(name: str, version: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "team", "resourceVersion": version}}


def event(kind: str, name: str, version: str) -> Obj:
    return {"type": kind, "object": repository(name, version)}


def bookmark(version: str) -> Obj:
    return {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": version}}}


def gone() -> Obj:
    return {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}


def page(version: str, *names: str, more: str | None = None) -> Obj:
    metadata: Obj = {"resourceVersion": version}
    if more:
        metadata["continue"] = more
    return {"metadata": metadata, "items": [repository(name, version) for name in names]}


class Response:
    """One watch response as urllib3 gives it: JSON lines cut into arbitrary chunks, then the
    server's end of the watch, a failure (`then`), or, with `hang`, silence until closed."""

    def __init__(self, lines: Sequence[Obj] = (), *, then: BaseException | None = None,
                 hang: bool = False) -> None:
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        # Cut mid-line: a chunk boundary must never split an event in two.
        self._chunks = [data[start:start + 7] for start in range(0, len(data), 7)]
        self._then = then
        self._hang = hang
        self.closed = threading.Event()

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        yield from self._chunks
        if self._then is not None:
            raise self._then
        if self._hang:
            self.closed.wait(WAIT)
            raise urllib3.exceptions.ProtocolError("connection closed")

    def read_chunked(self, amt: int | None = None,
                     decode_content: bool = True) -> Iterator[bytes]:
        return self.stream(amt, decode_content)

    def __iter__(self) -> Iterator[bytes]:
        return self.stream()

    def shutdown(self) -> None:
        self.closed.set()

    def close(self) -> None:
        self.closed.set()

    def release_conn(self) -> None:
        pass


class ScriptedApi:
    """`CustomObjectsApi`'s two list calls, answering from a script: list pages in order,
    and for each watch a `Response` or an exception. When the watches run out it answers a
    silent watch and sets `finished`, so a test knows the loop went through its script."""

    def __init__(self, pages: Sequence[Obj], watches: Sequence[Response | Exception]) -> None:
        self._pages = deque(pages)
        self._watches = deque(watches)
        self.lists: list[Obj] = []  # the options of each list call
        self.watches: list[Obj] = []  # the options of each watch call
        self.calls: list[str] = []  # "list" / "watch from VERSION", in order
        self.finished = threading.Event()
        self.last: Response | None = None

    def list_namespaced_custom_object(self, group: str, version: str, namespace: str,
                                      plural: str, **options: Any) -> Any:
        assert (group, version, namespace, plural) == ("ferry.dev", "v1alpha1", "team",
                                                       "repositories")
        if not options.get("watch"):
            self.lists.append(options)
            self.calls.append("list")
            return self._pages.popleft()
        self.watches.append(options)
        self.calls.append(f"watch from {options.get('resource_version')}")
        if not self._watches:
            self.last = Response(hang=True)
            self.finished.set()
            return self.last
        step = self._watches.popleft()
        if isinstance(step, Exception):
            raise step
        return step


class Recorder:
    """The consumer: every call, in the order the watcher made them."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def on_relist(self, objects: Sequence[Obj]) -> None:
        self.calls.append(("relist", [o["metadata"]["name"] for o in objects]))
        self.objects = list(objects)

    def on_event(self, change: WatchEvent[Obj]) -> None:
        self.calls.append((change.type, change.object["metadata"]["name"]))


def watch(api: ScriptedApi, recorder: Recorder, settings: WatchSettings = SETTINGS) -> Watcher:
    """Run a watcher through `api`'s script, then stop it; it must end at once."""
    watcher = Watcher(api=api, kind=REPOSITORY, consumer=recorder, convert=whole,
                      settings=settings, namespace="team")
    thread = run_in_thread(watcher, name="test watch")
    assert api.finished.wait(WAIT), f"the script did not run through: {api.calls}"
    watcher.stop()
    thread.join(WAIT)
    assert not thread.is_alive()
    return watcher


def test_a_paged_list_then_events_in_order_while_bookmarks_only_move_the_version() -> None:
    api = ScriptedApi(
        [page("9", "a", "b", more="next"), page("10", "c")],
        [Response([event("ADDED", "d", "11"), bookmark("15"), event("MODIFIED", "a", "16")]),
         Response([bookmark("20")])],  # both end as the server ends a watch (its timeout)
    )
    recorder = Recorder()
    watcher = watch(api, recorder, NO_FAILURE)
    assert recorder.calls == [("relist", ["a", "b", "c"]), (EventType.ADDED, "d"),
                              (EventType.MODIFIED, "a")]
    # Listed items come without apiVersion and kind; the consumer gets whole objects.
    assert {(o["apiVersion"], o["kind"]) for o in recorder.objects} == {
        ("ferry.dev/v1alpha1", "Repository")}
    assert [(o["limit"], o.get("_continue")) for o in api.lists] == [(2, None), (2, "next")]
    # Each watch resumes where the last event or bookmark left off; a server's end of a
    # watch is no failure, and no reason to list again.
    assert api.calls == ["list", "list", "watch from 10", "watch from 16", "watch from 20"]
    assert all(o["allow_watch_bookmarks"] and o["timeout_seconds"] == 30 for o in api.watches)
    assert (watcher.restarts, watcher.relists) == (0, 1)


class Converted:
    """A consumer of what `convert` made: (name, lists asked for when it was converted)."""

    def __init__(self) -> None:
        self.relists: list[list[tuple[str, int]]] = []
        self.events: list[tuple[EventType, tuple[str, int]]] = []

    def on_relist(self, objects: Sequence[tuple[str, int]]) -> None:
        self.relists.append(list(objects))

    def on_event(self, change: WatchEvent[tuple[str, int]]) -> None:
        self.events.append((change.type, change.object))


def test_objects_are_converted_as_their_page_arrives_while_the_next_page_is_asked_for() -> None:
    # What a controller with ten thousand runs relies on: a relist holds whole objects of two
    # pages at most (the one converted, the one the API server is making), and the consumer
    # only ever sees what it keeps of them.
    api = ScriptedApi([page("9", "a", "b", more="next"), page("10", "c")],
                      [Response([event("MODIFIED", "a", "11")])])

    def convert(obj: Obj) -> tuple[str, int]:
        # The first page's objects wait (a while at most) for the second page to be asked
        # for: it is, without waiting for them.
        if obj["metadata"]["name"] in ("a", "b"):
            wait_until(lambda: api.calls.count("list") == 2, what="the second page asked for",
                       timeout=WAIT, interval=0.005)
        return obj["metadata"]["name"], api.calls.count("list")

    consumer = Converted()
    watcher = Watcher(api=api, kind=REPOSITORY, consumer=consumer, settings=SETTINGS,
                      convert=convert, namespace="team")
    thread = run_in_thread(watcher, name="test watch")
    assert api.finished.wait(WAIT)
    watcher.stop()
    thread.join(WAIT)
    assert consumer.relists == [[("a", 2), ("b", 2), ("c", 2)]]
    assert consumer.events == [(EventType.MODIFIED, ("a", 2))]
    assert [o.get("_continue") for o in api.lists] == [None, "next"]


def test_410_gone_relists_and_the_consumer_sees_the_whole_state_again() -> None:
    api = ScriptedApi(
        [page("10", "a"), page("30", "b"), page("40", "b", "c")],
        [Response([event("ADDED", "x", "11"), gone()]),  # an ERROR event in the stream
         Response([event("MODIFIED", "b", "31")]),
         ApiException(status=410, reason="Gone")],  # or the watch call itself refused
    )
    recorder = Recorder()
    # An expired version is routine (etcd compacts): relisted at once, not as a failure.
    watcher = watch(api, recorder, NO_FAILURE)
    assert recorder.calls == [("relist", ["a"]), (EventType.ADDED, "x"), ("relist", ["b"]),
                              (EventType.MODIFIED, "b"), ("relist", ["b", "c"])]
    assert api.calls == ["list", "watch from 10", "list", "watch from 30", "watch from 31",
                         "list", "watch from 40"]
    assert (watcher.restarts, watcher.relists) == (2, 3)


def test_a_silent_connection_times_out_and_the_watch_restarts_from_a_fresh_list() -> None:
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/apis", "Read timed out.")  # type: ignore[arg-type]
    api = ScriptedApi([page("10", "a"), page("20", "a")],
                      [Response([event("MODIFIED", "a", "11")], then=timeout)])
    recorder = Recorder()
    watcher = watch(api, recorder)
    # Silence is noticed by the read timeout the watch asks for: no byte, not even a
    # bookmark, for `inactivity_timeout` seconds.
    assert api.watches[0]["_request_timeout"] == (3.0, 7.0)
    assert {o["_request_timeout"] for o in api.lists} == {(3.0, 7.0)}  # a hung list too
    assert recorder.calls == [("relist", ["a"]), (EventType.MODIFIED, "a"), ("relist", ["a"])]
    assert api.calls == ["list", "watch from 10", "list", "watch from 20"]
    assert (watcher.restarts, watcher.relists) == (1, 2)


def test_other_failures_restart_the_watch_with_a_fresh_list() -> None:
    failure = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "etcd"}}
    api = ScriptedApi([page("10", "a"), page("12", "a"), page("14", "b")],
                      [Response([failure]), ApiException(status=503, reason="Unavailable")])
    recorder = Recorder()
    watcher = watch(api, recorder)
    assert api.calls == ["list", "watch from 10", "list", "watch from 12", "list",
                         "watch from 14"]
    assert recorder.calls == [("relist", ["a"]), ("relist", ["a"]), ("relist", ["b"])]
    assert (watcher.restarts, watcher.relists) == (2, 3)


def test_stop_ends_a_silent_watch_at_once_and_is_no_failure() -> None:
    api = ScriptedApi([page("10", "a")], [])
    recorder = Recorder()
    watcher = watch(api, recorder, NO_FAILURE)  # asserts the thread ended within seconds, not 240
    assert api.last is not None and api.last.closed.is_set()
    assert api.calls == ["list", "watch from 10"]
    assert watcher.restarts == 0


def test_a_version_the_consumer_holds_skips_the_first_list_until_it_is_gone() -> None:
    api = ScriptedApi([page("30", "a")], [ApiException(status=410, reason="Gone")])
    recorder = Recorder()
    watcher = Watcher(api=api, kind=REPOSITORY, consumer=recorder, convert=whole,
                      settings=NO_FAILURE, namespace="team")
    ended: list[BaseException] = []

    def resume() -> None:
        try:
            watcher.list_and_watch(since="7")
        except BaseException as error:
            ended.append(error)

    thread = threading.Thread(target=resume)
    thread.start()
    assert api.finished.wait(WAIT), api.calls
    watcher.stop()
    thread.join(WAIT)
    assert api.calls == ["watch from 7", "list", "watch from 30"]
    assert recorder.calls == [("relist", ["a"])]
    assert [type(error) for error in ended] == [WatchStoppedError]


@pytest.mark.parametrize("namespace", [None, "team"])
def test_all_namespaces_or_one(namespace: str | None) -> None:
    calls: list[str] = []

    class Api(ScriptedApi):
        def list_cluster_custom_object(self, group: str, version: str, plural: str,
                                       **options: Any) -> Any:
            calls.append("cluster")
            return super().list_namespaced_custom_object(group, version, "team", plural,
                                                         **options)

        def list_namespaced_custom_object(self, group: str, version: str, ns: str,
                                          plural: str, **options: Any) -> Any:
            calls.append("namespaced")
            return super().list_namespaced_custom_object(group, version, ns, plural, **options)

    api = Api([page("10", "a")], [])
    watcher = Watcher(api=api, kind=REPOSITORY, consumer=Recorder(), convert=whole,
                      settings=SETTINGS, namespace=namespace,
                      label_selector="app.kubernetes.io/part-of=ferry")
    thread = run_in_thread(watcher, name="test watch")
    assert api.finished.wait(WAIT)
    watcher.stop()
    thread.join(WAIT)
    assert set(calls) == {"cluster" if namespace is None else "namespaced"}
    assert len(calls) == 2  # the list, then the watch
    assert {o["label_selector"] for o in [*api.lists, *api.watches]} == {
        "app.kubernetes.io/part-of=ferry"}


# -- streamed lists (`sendInitialEvents`) ------------------------------------------------------


def end_of_list(version: str) -> Obj:
    return {"type": "BOOKMARK", "object": {"metadata": {
        "resourceVersion": version, "annotations": {"k8s.io/initial-events-end": "true"}}}}


class Answer:
    """`ci.kube.plain.send`'s answer: a status, and the watch response (or the error body)."""

    def __init__(self, status: int, response: Response | None = None, body: bytes = b"") -> None:
        self.status = status
        self.reason = "OK" if status == 200 else "Unprocessable Entity"
        self.headers: dict[str, str] = {}
        self.response = response
        self.data = body

    def read(self) -> bytes:
        return self.data


class StreamingApi(ScriptedApi):
    """A `ScriptedApi` whose `api_client` answers the requests for streamed lists (the
    generated client has no `sendInitialEvents`: `ci.kube.plain` sends them) from `streams`:
    a `Response`, or a status the API server refuses with."""

    def __init__(self, streams: Sequence[Response | int], pages: Sequence[Obj],
                 watches: Sequence[Response | Exception]) -> None:
        super().__init__(pages, watches)
        self._streams = deque(streams)
        self.streamed: list[tuple[str, Any]] = []  # (url, request timeout) of each
        self.responses: list[Response] = []
        self.default_headers: dict[str, str] = {}
        self.configuration = type("Configuration", (), {"host": "https://api.test"})()
        self.api_client = self
        self.rest_client = self

    def update_params_for_auth(self, headers: dict[str, str], *_: Any) -> None:
        headers["Authorization"] = "Bearer test"

    def request(self, method: str, url: str, *, headers: dict[str, str], body: Any,
                _request_timeout: Any) -> Answer:
        assert method == "GET" and headers["Authorization"] == "Bearer test"
        self.streamed.append((url, _request_timeout))
        self.calls.append("stream list")
        step = self._streams.popleft()
        if isinstance(step, int):
            return Answer(step, body=b'{"kind":"Status","message":"sendInitialEvents is '
                                     b'forbidden for watch unless the WatchList feature gate '
                                     b'is enabled"}')
        self.responses.append(step)
        return Answer(200, step)


def test_a_streamed_list_then_a_watch_from_the_bookmark_that_ends_it() -> None:
    api = StreamingApi(
        [Response([event("ADDED", "a", "5"), bookmark("8"), event("ADDED", "b", "7"),
                   end_of_list("9"), event("MODIFIED", "a", "10")])],  # the last: never read
        [], [Response([event("MODIFIED", "b", "12")])])
    recorder = Recorder()
    watcher = watch(api, recorder, replace(STREAMED, backoff=(60.0,)))
    # The objects before the marked bookmark are the list; the watch resumes from its
    # version, and what the stream sent after it comes again on that watch.
    assert recorder.calls == [("relist", ["a", "b"]), (EventType.MODIFIED, "b")]
    assert {(o["apiVersion"], o["kind"]) for o in recorder.objects} == {
        ("ferry.dev/v1alpha1", "Repository")}
    assert api.calls == ["stream list", "watch from 9", "watch from 12"]
    url, timeout = api.streamed[0]
    assert url.startswith("https://api.test/apis/ferry.dev/v1alpha1/namespaces/team/repositories?")
    assert "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan" in url
    assert "allowWatchBookmarks=true&timeoutSeconds=30" in url and timeout == (3.0, 7.0)
    # The stream goes on after its list: closed there, not handed back to the pool.
    assert api.responses[0].closed.is_set()
    assert (watcher.restarts, watcher.relists, watcher.streams_lists) == (0, 1, True)


def test_an_api_server_that_does_not_stream_lists_is_paged_from_then_on() -> None:
    api = StreamingApi([422], [page("10", "a"), page("20", "a", "b")],
                       [Response([gone()])])
    recorder = Recorder()
    watcher = watch(api, recorder, replace(STREAMED, backoff=(60.0,)))
    # Refused once (the WatchList feature gate off), never asked again: the relist after the
    # 410 is paged straight away, and neither is a failure.
    assert api.calls == ["stream list", "list", "watch from 10", "list", "watch from 20"]
    assert recorder.calls == [("relist", ["a"]), ("relist", ["a", "b"])]
    assert (watcher.restarts, watcher.relists, watcher.streams_lists) == (1, 2, False)


def test_a_stream_that_ends_before_its_list_does_is_a_failure_and_streamed_again() -> None:
    api = StreamingApi([Response([event("ADDED", "a", "5")]),  # no end-of-list bookmark
                        Response([event("ADDED", "a", "5"), event("ADDED", "b", "6"),
                                  end_of_list("7")])],
                       [], [])
    recorder = Recorder()
    watcher = watch(api, recorder, STREAMED)
    # Half a list is never handed on: the consumer would drop the runs it did not see.
    assert recorder.calls == [("relist", ["a", "b"])]
    assert api.calls == ["stream list", "stream list", "watch from 7"]
    assert (watcher.restarts, watcher.relists) == (1, 1)


def test_a_410_after_a_streamed_list_streams_the_list_again() -> None:
    api = StreamingApi([Response([event("ADDED", "a", "5"), end_of_list("6")]),
                        Response([event("ADDED", "b", "30"), end_of_list("31")])],
                       [], [Response([event("ADDED", "b", "30"), gone()])])
    recorder = Recorder()
    watcher = watch(api, recorder, replace(STREAMED, backoff=(60.0,)))
    assert recorder.calls == [("relist", ["a"]), (EventType.ADDED, "b"), ("relist", ["b"])]
    assert api.calls == ["stream list", "watch from 6", "stream list", "watch from 31"]
    assert (watcher.restarts, watcher.relists) == (1, 2)


class PartRecorder(Recorder):
    """A `ListingConsumer`: the parts of a list while it comes, then the list."""

    def on_list_part(self, objects: Sequence[Obj]) -> None:
        self.calls.append(("part", [o["metadata"]["name"] for o in objects]))


def test_a_listing_consumer_gets_a_streamed_list_in_parts_while_it_comes() -> None:
    api = StreamingApi(
        # Ends before its list: a failure, after one whole part.
        [Response([event("ADDED", "a", "5"), event("ADDED", "b", "5"), event("ADDED", "c", "5")]),
         Response([event("ADDED", name, "5") for name in "abcde"] + [end_of_list("9")])],
        [], [Response([event("MODIFIED", "b", "12")])])
    recorder = PartRecorder()
    watch(api, recorder, replace(STREAMED, backoff=(0.01,)))
    # `page_size` objects a part, the rest at the list's end; the whole list after its parts.
    # The failed stream's whole part was handed on (the consumer keeps it as part of a list
    # still coming), but its list never was: nothing is dropped on half a list.
    assert recorder.calls == [("part", ["a", "b"]),
                              ("part", ["a", "b"]), ("part", ["c", "d"]), ("part", ["e"]),
                              ("relist", ["a", "b", "c", "d", "e"]), (EventType.MODIFIED, "b")]


def test_a_listing_consumer_gets_a_paged_list_page_by_page() -> None:
    api = ScriptedApi([page("9", "a", "b", more="next"), page("10", "c")],
                      [Response([event("ADDED", "d", "11")])])
    recorder = PartRecorder()
    watch(api, recorder, NO_FAILURE)
    assert recorder.calls == [("part", ["a", "b"]), ("part", ["c"]),
                              ("relist", ["a", "b", "c"]), (EventType.ADDED, "d")]


class StoppingRecorder(PartRecorder):
    """A listing consumer whose owner stops the watch on the first part (a controller shutting
    down while its list still comes)."""

    watcher: Watcher | None = None

    def on_list_part(self, objects: Sequence[Obj]) -> None:
        super().on_list_part(objects)
        assert self.watcher is not None
        self.watcher.stop()


def test_a_watcher_stopped_while_its_list_comes_hands_nothing_more_on() -> None:
    # The whole stream is already read (`Response` yields its lines after a close too), as
    # buffered lines are when `stop` wakes the read.
    api = StreamingApi([Response([event("ADDED", name, "5") for name in "abcde"]
                                 + [end_of_list("9")])], [], [])
    recorder = StoppingRecorder()
    watcher = Watcher(api=api, kind=REPOSITORY, consumer=recorder, convert=whole,
                      settings=STREAMED, namespace="team")
    recorder.watcher = watcher
    thread = run_in_thread(watcher, name="test watch")
    thread.join(WAIT)
    assert not thread.is_alive()
    assert recorder.calls == [("part", ["a", "b"])]
    assert api.calls == ["stream list"]
    assert (watcher.restarts, watcher.relists) == (0, 0)
