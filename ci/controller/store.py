"""The controller's view of runs and task runs, fed by watches, read by workers.

Watches call the consumers from their threads; the store is locked, and every change is
handed to the event loop (`notify`) as an `Observation`, in the order the watch saw it: one
at a time, and a relist's in parts while the list comes (one wake of the loop per part, not
one per run). A listed run is reported as soon as its part is in; what looks across a
namespace's runs (admission, pruning) waits for the whole list (`listing`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ci.controller.runs import RunKey, RunSnapshot, TaskRunSnapshot
from ci.kube.watching import EventType, WatchEvent


@dataclass(frozen=True, slots=True)
class Observation:
    """A change to one run; `run` is the run as the event showed it (None: a TaskRun changed,
    read the run from the store). `seen` is wall-clock time, for report latency."""

    run: RunSnapshot | None
    seen: float
    deleted: bool = False
    # Part of a list still coming: the run is in the store, but the namespace's other runs
    # may not be yet, so nothing that compares runs is decided on it.
    listing: bool = False
    # False: handed on already while its list came; the list's end shows it again only for
    # what waited for the whole list.
    report: bool = True


Notify = Callable[[Sequence[tuple[RunKey, Observation]]], None]


def newer_version(candidate: str, current: str) -> bool:
    # resourceVersions are etcd revisions in every API server we know; comparing them keeps a
    # local write (an admission's patch result) from being undone by an older event still
    # in flight. Non-numeric versions fall back on "the last one wins".
    if candidate.isdigit() and current.isdigit():
        return int(candidate) >= int(current)
    return True


class RunStore:
    def __init__(self, notify: Notify) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._runs: dict[RunKey, RunSnapshot] = {}
        self._task_runs: dict[RunKey, dict[str, TaskRunSnapshot]] = {}
        # Runs handed on in the parts of a list still coming, at the version handed, and the
        # namespaces (None: all) being listed.
        self._handed: dict[RunKey, str] = {}
        self._listing: set[str | None] = set()

    # -- reading ----------------------------------------------------------------------------

    def run(self, key: RunKey) -> RunSnapshot | None:
        with self._lock:
            return self._runs.get(key)

    def task_runs(self, key: RunKey) -> tuple[TaskRunSnapshot, ...]:
        with self._lock:
            return tuple((self._task_runs.get(key) or {}).values())

    def runs(self, namespace: str | None = None) -> tuple[RunSnapshot, ...]:
        with self._lock:
            return tuple(
                run for run in self._runs.values()
                if namespace is None or run.namespace == namespace
            )

    def listing(self, namespace: str) -> bool:
        """Is a list of `namespace`'s runs still coming (the store may hold part of it)?"""
        with self._lock:
            return namespace in self._listing or None in self._listing

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    # -- writing ----------------------------------------------------------------------------

    def remember(self, run: RunSnapshot) -> bool:
        """Take a run this process just wrote; False if the store already has a newer one."""
        with self._lock:
            current = self._runs.get(run.key)
            if current is not None and not newer_version(run.resource_version,
                                                  current.resource_version):
                return False
            self._runs[run.key] = run
            return True

    def add_listed_runs(self, runs: Sequence[RunSnapshot], *, namespace: str | None) -> None:
        """A part of a list of `namespace`'s runs (None: all) still coming: its runs are
        stored and handed on to be reported; none is dropped before the whole list is in."""
        seen = time.time()
        with self._lock:
            self._listing.add(namespace)
            for run in runs:
                current = self._runs.get(run.key)
                if current is None or newer_version(run.resource_version,
                                                    current.resource_version):
                    self._runs[run.key] = run
                self._handed[run.key] = run.resource_version
        self._notify([(run.key, Observation(run, seen, listing=True)) for run in runs])

    def replace_runs(self, runs: Iterable[RunSnapshot], *, namespace: str | None) -> None:
        """The whole list of `namespace`'s runs (None: all): what is not in it is dropped.
        Runs its parts handed on already are shown again with `report=False`."""
        seen = time.time()
        fresh = {run.key: run for run in runs}
        with self._lock:
            gone = [key for key in self._runs
                    if (namespace is None or key[0] == namespace) and key not in fresh]
            for key in gone:
                del self._runs[key]
                self._task_runs.pop(key, None)
            self._runs.update(fresh)
            handed = self._handed
            self._handed = {key: version for key, version in handed.items()
                            if namespace is not None and key[0] != namespace}
            self._listing.discard(namespace)
        self._notify([
            (key, Observation(run, seen, report=handed.get(key) != run.resource_version))
            for key, run in sorted(fresh.items(), key=lambda item: item[1].created)])

    def update_run(self, run: RunSnapshot, *, deleted: bool) -> None:
        seen = time.time()
        with self._lock:
            if deleted:
                self._runs.pop(run.key, None)
                self._task_runs.pop(run.key, None)
            else:
                current = self._runs.get(run.key)
                if current is None or newer_version(run.resource_version, current.resource_version):
                    self._runs[run.key] = run
        self._notify(((run.key, Observation(run, seen, deleted=deleted)),))

    def replace_task_runs(self, task_runs: Iterable[TaskRunSnapshot], *,
                          namespace: str | None) -> None:
        grouped: dict[RunKey, dict[str, TaskRunSnapshot]] = {}
        for task_run in task_runs:
            grouped.setdefault((task_run.namespace, task_run.pipeline_run), {})[
                task_run.name] = task_run
        with self._lock:
            for key in [k for k in self._task_runs if namespace is None or k[0] == namespace]:
                del self._task_runs[key]
            self._task_runs.update(grouped)

    def update_task_run(self, task_run: TaskRunSnapshot, *, deleted: bool) -> None:
        key = (task_run.namespace, task_run.pipeline_run)
        with self._lock:
            children = self._task_runs.setdefault(key, {})
            if deleted:
                children.pop(task_run.name, None)
            else:
                children[task_run.name] = task_run
            known = key in self._runs
        if known and not deleted:
            self._notify(((key, Observation(None, time.time())),))


class PipelineRunConsumer:
    """A `watching.ListingConsumer` of PipelineRun snapshots in one namespace (None: all)."""

    def __init__(self, store: RunStore, *, namespace: str | None) -> None:
        self._store = store
        self._namespace = namespace

    def on_list_part(self, objects: Sequence[RunSnapshot]) -> None:
        self._store.add_listed_runs(objects, namespace=self._namespace)

    def on_relist(self, objects: Sequence[RunSnapshot]) -> None:
        self._store.replace_runs(objects, namespace=self._namespace)

    def on_event(self, event: WatchEvent[RunSnapshot]) -> None:
        self._store.update_run(event.object, deleted=event.type == EventType.DELETED)


class TaskRunConsumer:
    """A `watching.Consumer` of TaskRun snapshots; their runs' workers are woken on every
    change.

    Relisted before the PipelineRuns' watch starts (see the app), so a resumed run sees its
    jobs at once."""

    def __init__(self, store: RunStore, *, namespace: str | None) -> None:
        self._store = store
        self._namespace = namespace

    def on_relist(self, objects: Sequence[TaskRunSnapshot]) -> None:
        self._store.replace_task_runs(objects, namespace=self._namespace)

    def on_event(self, event: WatchEvent[TaskRunSnapshot]) -> None:
        self._store.update_task_run(event.object, deleted=event.type == EventType.DELETED)
