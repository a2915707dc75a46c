"""The read API's work, apart from HTTP: who may read what, and runs, steps and logs from the
cluster and the archive. Every method blocks (API server, store): call it in a thread.

Answers that must not reveal what exists (docs/logs.md, "Permissions"):

- no bearer token, or one the API server does not accept: 401;
- a namespace the caller may not `get` `pipelineruns` in: 404, as for what does not exist
  (#13: every denial is a 404), decided before anything in it is looked up, so it is the same
  whether the namespace, the Repository or the run exist;
- in a namespace the caller may read: 404 for a Repository, run, job or step that is not there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ci.archive.layout import BadNameError, StepKey, repository_prefix, run_prefix
from ci.archive.steps import StepRecord, read_log, read_record, run_records
from ci.archive.store import LogStore
from ci.controller.runs import RunSnapshot, TaskRunSnapshot
from ci.kube.errors import LogUnavailableError
from ci.kube.pipeline_runs import REPOSITORY_OBJECT_LABEL, PipelineRuns
from ci.kube.repositories import Repository
from ci.kube.reviews import Identity, Reviews
from ci.kube.step_logs import StepLogs
from ci.masking import Masker
from webhooks.api.following import FollowTimings, LogFollower, Phase
from webhooks.api.runs import archived_run, cluster_run, step_names

# Runs listed when the caller asks for no limit; the newest first.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


MaskerFor = Callable[[RunSnapshot, Repository | None], Masker]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadService:
    reviews: Reviews
    repositories: Callable[[], tuple[Repository, ...]]
    runs: PipelineRuns
    step_logs: StepLogs
    archive: LogStore | None
    masker_for: MaskerFor
    timings: FollowTimings = field(default_factory=FollowTimings)

    # --- who ------------------------------------------------------------------------------

    def caller(self, authorization: str | None) -> Identity:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "a bearer token is needed (Authorization: Bearer <token>)")
        identity = self.reviews.identity(token.strip())
        if identity is None:
            raise ApiError(401, "the token is not valid (the API server refused it)")
        return identity

    def check(self, identity: Identity, namespace: str) -> None:
        if not self.reviews.may_read(identity, namespace):
            raise ApiError(404, f"nothing found in namespace {namespace} that "
                                f"{identity.username} may read (reading runs needs `get` on "
                                "`pipelineruns` there)")

    # --- repositories and runs -------------------------------------------------------------

    def repositories_for(self, identity: Identity) -> list[dict[str, Any]]:
        found = sorted(self.repositories(), key=lambda r: r.key)
        allowed = {ns for ns in {r.namespace for r in found} if self.reviews.may_read(identity, ns)}
        return [{"namespace": r.namespace, "name": r.name, "forge": r.forge, "url": r.url}
                for r in found if r.namespace in allowed]

    def _repository(self, namespace: str, name: str) -> Repository | None:
        known = next((r for r in self.repositories()
                      if r.namespace == namespace and r.name == name), None)
        if known is None and not self._archived_repository(namespace, name):
            raise not_found(f"Repository {namespace}/{name}")
        return known

    def _archived_repository(self, namespace: str, name: str) -> bool:
        if self.archive is None:
            return False
        try:
            prefix = repository_prefix(namespace, name)
        except BadNameError:
            return False
        return next(iter(self.archive.list(prefix)), None) is not None

    def list_runs(self, namespace: str, repository: str, *, limit: int) -> list[dict[str, Any]]:
        self._repository(namespace, repository)
        objects = self.runs.list(namespace, selector={REPOSITORY_OBJECT_LABEL: repository})
        views = [cluster_run(obj, (), repository=repository, with_jobs=False) for obj in objects]
        names = {view["name"] for view in views}
        for run in self._archived_runs(namespace, repository):
            if run not in names:
                records = run_records(self.archive, namespace=namespace,  # type: ignore[arg-type]
                                      repository=repository, run=run)
                views.append(archived_run(namespace, repository, run, records, with_jobs=False))
            if len(views) >= limit + len(names):
                break
        views.sort(key=lambda view: str(view["createdAt"] or ""), reverse=True)
        return views[:limit]

    def _archived_runs(self, namespace: str, repository: str) -> Iterator[str]:
        """Archived run names, newest first (by their objects' times)."""
        if self.archive is None:
            return iter(())
        newest: dict[str, Any] = {}
        for stored in self.archive.list(repository_prefix(namespace, repository)):
            parts = stored.name.split("/")
            if len(parts) == 5:
                run = parts[2]
                newest[run] = max(newest.get(run, stored.modified), stored.modified)
        return iter(sorted(newest, key=lambda run: newest[run], reverse=True))

    def find_run(self, namespace: str, run: str, repository: str | None = None
                 ) -> dict[str, Any]:
        """One run with its jobs and steps; its Repository found from the run if not given."""
        obj = self.runs.get(namespace, run)
        if obj is not None:
            owner = str(((obj.get("metadata") or {}).get("labels") or {}).get(
                REPOSITORY_OBJECT_LABEL, ""))
            if not owner or (repository is not None and owner != repository):
                raise not_found(f"run {namespace}/{run}")
            task_runs = self.step_logs.task_runs(namespace, run)
            return cluster_run(obj, task_runs, repository=owner,
                               records=self._records(namespace, owner, run))
        for name in [repository] if repository else self._repository_names(namespace):
            records = self._records(namespace, name, run)
            if records:
                return archived_run(namespace, name, run, records)
        raise not_found(f"run {namespace}/{run}")

    def _repository_names(self, namespace: str) -> list[str]:
        names = {r.name for r in self.repositories() if r.namespace == namespace}
        if self.archive is not None:
            for stored in itertools.islice(self.archive.list(f"{namespace}/"), 100_000):
                names.add(stored.name.split("/")[1])
        return sorted(names)

    def _records(self, namespace: str, repository: str, run: str) -> list[StepRecord]:
        if self.archive is None:
            return []
        try:
            run_prefix(namespace, repository, run)
        except BadNameError:
            return []
        return run_records(self.archive, namespace=namespace, repository=repository, run=run)

    # --- a step's log ----------------------------------------------------------------------

    def step_log(self, namespace: str, repository: str, run: str, job: str, step: str, *,
                 offset: int, follow: bool) -> LogFollower:
        try:
            key = StepKey(namespace=namespace, repository=repository, run=run, job=job,
                          step=step)
        except BadNameError as error:
            raise not_found(f"step {job}/{step} of run {namespace}/{run}") from error
        source = ClusterStep(self, key)
        archived = source.record() is not None
        if not archived and not source.exists():
            raise not_found(f"step {job}/{step} of run {namespace}/{run}")
        # An archived log was masked when it was archived: no Secret is read to serve it.
        masker = Masker() if archived else source.masker()
        return LogFollower(source, masker=masker, offset=offset, follow=follow,
                           timings=self.timings)


class ClusterStep:
    """One step as `LogFollower` reads it: its record and log in the archive, its container
    through the API server."""

    def __init__(self, service: ReadService, key: StepKey) -> None:
        self._service = service
        self._key = key
        self._run: dict[str, Any] | None = None

    def _pipeline_run(self) -> dict[str, Any] | None:
        if self._run is None:
            self._run = self._service.runs.get(self._key.namespace, self._key.run)
        return self._run

    def exists(self) -> bool:
        obj = self._pipeline_run()
        if obj is None:
            return False
        owner = ((obj.get("metadata") or {}).get("labels") or {}).get(REPOSITORY_OBJECT_LABEL)
        if owner != self._key.repository:
            return False
        return self._key.step in step_names(obj).get(self._key.job, [])

    def masker(self) -> Masker:
        obj = self._pipeline_run()
        if obj is None:
            return Masker()  # archived: masked when it was archived
        repository = next((r for r in self._service.repositories()
                           if r.namespace == self._key.namespace
                           and r.name == self._key.repository), None)
        return self._service.masker_for(RunSnapshot.of(obj), repository)

    def record(self) -> StepRecord | None:
        archive = self._service.archive
        return read_record(archive, self._key) if archive is not None else None

    def archived(self, offset: int) -> Iterator[bytes] | None:
        archive = self._service.archive
        return read_log(archive, self._key, offset=offset) if archive is not None else None

    def _task_run(self) -> TaskRunSnapshot | None:
        for obj in self._service.step_logs.task_runs(self._key.namespace, self._key.run):
            snapshot = TaskRunSnapshot.of(obj)
            if snapshot.pipeline_task == self._key.job:
                return snapshot
        return None

    def phase(self) -> Phase:
        self._run = None  # read again: the run may have ended
        obj = self._pipeline_run()
        if obj is None:
            return Phase.ENDED  # pruned: only the archive is left
        task_run = self._task_run()
        if task_run is None or task_run.pod_name is None:
            return Phase.ENDED if RunSnapshot.of(obj).conclusion.final else Phase.WAITING
        step = next((s for s in task_run.steps if s.name == self._key.step), None)
        if step is not None and step.exit_code is not None:
            return Phase.ENDED
        if task_run.conclusion.final:
            return Phase.ENDED
        return Phase.RUNNING if step is not None else Phase.WAITING

    def live(self, *, follow: bool) -> Iterator[bytes]:
        task_run = self._task_run()
        if task_run is None or task_run.pod_name is None:
            raise LogUnavailableError("the step has no pod yet")
        step = next((s for s in task_run.steps if s.name == self._key.step), None)
        container = step.container if step is not None else f"step-{self._key.step}"
        return self._service.step_logs.read(self._key.namespace, task_run.pod_name, container,
                                            follow=follow)
