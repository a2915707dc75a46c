"""Where the watches' changes go: each run's report and log archiving, its group's admission,
its Repository's pruning; all as keys of the controller's queues, called on the event loop.

What compares a namespace's runs (admission, pruning) is never decided on part of a list: a
run seen while its list still comes (`Observation.listing`) is reported at once, and the
passes over its namespace wait for the list's end, which shows every listed run again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ci.controller import admission
from ci.controller.queueing import KeyedQueue
from ci.controller.runs import RunKey
from ci.controller.store import Observation, RunStore
from ci.kube.repositories import Repository

Key = tuple[str, str, str]  # ("run" | "admit" | "prune", namespace, name)


class Routing:
    def __init__(self, *, queue: KeyedQueue[Key, Observation | None],
                 archive_queue: KeyedQueue[RunKey, Observation] | None, store: RunStore,
                 admit: bool, prune: bool) -> None:
        self._queue = queue
        self._archive_queue = archive_queue
        self._store = store
        self._admit = admit
        self._prune = prune
        # Prune passes asked for while their namespace's runs were still being listed:
        # (namespace, Repository name), submitted once the list is whole.
        self._deferred_prunes: set[tuple[str, str]] = set()

    def submit_runs(self, observations: Sequence[tuple[RunKey, Observation]]) -> None:
        """The store's changes (`RunStore`'s `notify`)."""
        for key, observation in observations:
            if observation.report:
                self._queue.submit(("run", *key), observation)
                if self._archive_queue is not None:
                    self._archive_queue.submit(key, observation)
            run = observation.run
            # Admission over part of a list could start a run whose group's running run is
            # not listed yet: it waits for the list's end.
            if self._admit and run is not None and not observation.listing:
                group = admission.group_of(run)
                if group is not None:
                    self._queue.submit(("admit", run.namespace, group), None, newest_only=True)
        if self._deferred_prunes:
            for namespace, name in [item for item in self._deferred_prunes
                                    if not self._store.listing(item[0])]:
                self._deferred_prunes.discard((namespace, name))
                self._prune_pass(namespace, name)

    def resubmit_all(self) -> None:
        """A Repository (or its Secret name) appeared or changed: runs that found none before
        are looked at again. Cheap: runs with nothing to report return at once."""
        seen = time.time()
        for run in self._store.runs():
            self._queue.submit(("run", *run.key), Observation(None, seen))
            if self._archive_queue is not None:
                self._archive_queue.submit(run.key, Observation(None, seen))

    def on_final(self, repository: Repository) -> None:
        """A run of `repository` is final (reported, and archived where logs are)."""
        if not self._prune:
            return
        if self._store.listing(repository.namespace):
            # Pruning part of a list would keep the newest listed runs, not the newest runs.
            self._deferred_prunes.add((repository.namespace, repository.name))
            return
        self._prune_pass(repository.namespace, repository.name)

    def _prune_pass(self, namespace: str, name: str) -> None:
        # One pass over the namespace's runs for all the runs that ended meanwhile: a restart
        # with 10,000 finished runs queued 10,000 passes of 10,000 runs each.
        self._queue.submit(("prune", namespace, name), None, newest_only=True)
