"""Which runs the controller may act on: those the receiver bound to their Repository.

A run without a valid binding (`ci.kube.binding`) is never reported, admitted or counted
towards pruning: anyone who may create PipelineRuns in a team namespace can write its labels
and annotations, so they prove nothing by themselves. Each refused run is logged once per
reason (`run refused`) and counted in `ferry_controller_runs_refused_total{reason}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from ci.controller.metrics import ControllerMetrics
from ci.controller.runs import RunSnapshot
from ci.kube.binding import BindingKeys, Refusal, binding_inputs, refusal_for
from ci.kube.repositories import Repository, RepositoryIndex

log = structlog.get_logger(__name__)


class RunVerifier:
    def __init__(self, keys: Callable[[], BindingKeys], *, window: float,
                 metrics: ControllerMetrics,
                 cached: Callable[[], BindingKeys | None] | None = None) -> None:
        """`keys` may block (it reads the key's Secret when its cache is old); `cached`, if
        given, never does: it answers the keys while they are fresh, else None."""
        self._keys = keys
        self._cached = cached
        self._window = window
        self._metrics = metrics
        self._refused: dict[str, Refusal] = {}  # run uid -> the reason last logged
        # run uid -> what was found bound (`binding_inputs`), to which Repository, with which
        # keys: a pass over every run (pruning, admission) checks each MAC once, not once per
        # pass, and neither does each of the controller's own writes of its memory (2.9% of
        # its CPU in a burst, when the cache was keyed by resourceVersion).
        self._bound: dict[str, tuple[tuple[object, ...], Repository, BindingKeys]] = {}

    async def refusal(self, run: RunSnapshot, repository: Repository) -> Refusal | None:
        """None if `run` is bound to `repository`; else why not (logged and counted once)."""
        keys = self._cached() if self._cached is not None else None
        if keys is None:
            keys = await asyncio.to_thread(self._keys)
        inputs = binding_inputs(namespace=run.namespace, name=run.name, run_labels=run.labels,
                                run_annotations=run.annotations, created=run.created)
        if self._bound.get(run.uid) == (inputs, repository, keys):
            return None
        refusal = refusal_of(run, repository, keys, window=self._window)
        if refusal is None:
            self._refused.pop(run.uid, None)
            self._bound[run.uid] = (inputs, repository, keys)
            return None
        self._bound.pop(run.uid, None)
        if self._refused.get(run.uid) is not refusal:
            self._refused[run.uid] = refusal
            self._metrics.refused.labels(refusal.value).inc()
            # Not the binding's value: it proves nothing to a reader and helps a forger.
            log.warning("run refused: not bound to its Repository by Ferry's receiver",
                        run=f"{run.namespace}/{run.name}", reason=refusal.value,
                        repository_object=f"{repository.namespace}/{repository.name}",
                        claimed_repository=run.repository, claimed_sha=run.sha)
        return refusal

    async def bound(self, run: RunSnapshot, repositories: RepositoryIndex) -> bool:
        """Is `run` bound to the Repository its URL names in its own namespace?"""
        repository = repository_of(run, repositories)
        return repository is not None and await self.refusal(run, repository) is None

    def forget(self, uid: str) -> None:
        self._refused.pop(uid, None)
        self._bound.pop(uid, None)


def repository_of(run: RunSnapshot, repositories: RepositoryIndex) -> Repository | None:
    """The Repository in the run's namespace whose URL the run names; None if there is none
    (or two): a run only ever uses its own namespace's Repository and credentials."""
    return repositories.for_run(run.repository_url, run.namespace)


def refusal_of(run: RunSnapshot, repository: Repository, keys: BindingKeys, *,
               window: float) -> Refusal | None:
    return refusal_for(namespace=run.namespace, name=run.name, run_labels=run.labels,
                       run_annotations=run.annotations, created=run.created,
                       repository=repository, keys=keys, window=window)
