"""A list handed on in parts (`RunStore.add_listed_runs`, then `replace_runs`) through the
controller's routing: each run reported once, as soon as its part is in; admission and
pruning, which compare a namespace's runs, only once the list is whole."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ci.controller.queueing import KeyedQueue
from ci.controller.retrying import Retry
from ci.controller.routing import Key, Routing
from ci.controller.runs import RunKey, RunSnapshot
from ci.controller.store import Observation, RunStore
from ci.kube import labels
from ci.kube.repositories import Repository
from tests.unit.controller.builders import pipeline_run
from tests.unit.kube.test_repositories import repository_object


def _run(name: str, *, version: str = "1", pending: bool = False,
         running: bool = False) -> RunSnapshot:
    obj = pipeline_run(name=name, spec_status=labels.PENDING if pending else None,
                       condition=("Unknown", "Running") if running else None)
    obj["metadata"]["resourceVersion"] = version
    obj["metadata"]["labels"][labels.CONCURRENCY_GROUP] = "main"
    obj["metadata"]["annotations"][labels.CONCURRENCY_LIMIT] = "1"
    return RunSnapshot.of(obj)


@dataclass
class Handled:
    """What the queues' handlers were given, by key: the run's state at the time."""

    keys: list[Key] = field(default_factory=list)
    archived: list[RunKey] = field(default_factory=list)
    # For each admission pass: the runs of the namespace the store held when it ran.
    admission_saw: list[list[str]] = field(default_factory=list)


def _repository() -> Repository:
    return Repository.from_object(
        repository_object("widget", "https://github.com/acme/widget", namespace="team"))


def _routed(store_calls: list[tuple[str, list[RunSnapshot]]], *, final_during: int
            ) -> Handled:
    """The store fed with `store_calls` ("part" or "list", runs) from a thread, as a watch
    does; the routing's queues handled on the loop. A run of the Repository becomes final
    (its report done) after the `final_during`th call."""
    handled = Handled()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        routing: Routing
        store = RunStore(lambda observations: loop.call_soon_threadsafe(
            routing.submit_runs, observations))

        async def handle(key: Key, item: Observation | None, attempt: int) -> Retry | None:
            handled.keys.append(key)
            if key[0] == "admit":
                handled.admission_saw.append(sorted(run.name for run in store.runs("team")))
            return None

        async def archive(key: RunKey, item: Observation, attempt: int) -> Retry | None:
            handled.archived.append(key)
            return None

        queue: KeyedQueue[Key, Observation | None] = KeyedQueue(handle, workers=4)
        archive_queue: KeyedQueue[RunKey, Observation] = KeyedQueue(archive, workers=2)
        routing = Routing(queue=queue, archive_queue=archive_queue, store=store, admit=True,
                          prune=True)
        for index, (call, runs) in enumerate(store_calls, start=1):
            if call == "part":
                await asyncio.to_thread(store.add_listed_runs, runs, namespace="team")
            else:
                await asyncio.to_thread(store.replace_runs, runs, namespace="team")
            await asyncio.sleep(0)  # the loop takes what the watch's thread handed it
            await queue.idle()
            if index == final_during:
                routing.on_final(_repository())
        await queue.idle()
        await archive_queue.idle()
        await queue.close()
        await archive_queue.close()

    asyncio.run(main())
    return handled


def test_a_part_is_reported_at_once_and_admission_waits_for_the_whole_list() -> None:
    waiting, running = _run("a-waiting", pending=True), _run("z-running", running=True)
    handled = _routed([("part", [waiting]), ("part", [running]),
                       ("list", [waiting, running])], final_during=1)
    runs = [key for key in handled.keys if key[0] == "run"]
    # Each run reported (and archived) once, from its part; the list's end repeats none.
    assert sorted(runs) == [("run", "team", "a-waiting"), ("run", "team", "z-running")]
    assert sorted(handled.archived) == [("team", "a-waiting"), ("team", "z-running")]
    assert handled.keys.index(("run", "team", "a-waiting")) < handled.keys.index(
        ("run", "team", "z-running"))
    # One admission pass, after the list's end: it saw the running run, so the waiting one
    # stays waiting (a pass on the first part alone would have admitted it).
    assert handled.admission_saw == [["a-waiting", "z-running"]]
    # The prune asked for during the list ran once, after it.
    prunes = [index for index, key in enumerate(handled.keys) if key[0] == "prune"]
    assert len(prunes) == 1
    assert prunes[0] > handled.keys.index(("admit", "team", "main"))


def test_a_run_changed_since_its_part_or_listed_without_parts_is_reported_at_the_end() -> None:
    first, changed = _run("a-run", version="1"), _run("a-run", version="2")
    other = _run("b-run")
    handled = _routed([("part", [first]), ("list", [changed, other])], final_during=0)
    assert [key for key in handled.keys if key[0] == "run"].count(("run", "team", "a-run")) == 2
    assert ("run", "team", "b-run") in handled.keys


def test_a_final_run_outside_a_list_is_pruned_at_once_after_the_list_drops_what_went(
) -> None:
    kept, gone = _run("a-run"), _run("b-run")
    handled = _routed([("part", [kept, gone]), ("list", [kept]), ("list", [kept])],
                      final_during=3)
    assert handled.keys[-1] == ("prune", "team", "widget")
    # The admission passes saw the store as each whole list left it: the run not listed
    # again is gone from it.
    assert handled.admission_saw == [["a-run"], ["a-run"]]
    # The second list is a plain relist (no parts): its run is reported again, as before.
    runs = [key for key in handled.keys if key[0] == "run"]
    assert (runs.count(("run", "team", "a-run")), runs.count(("run", "team", "b-run"))) == (2, 1)
