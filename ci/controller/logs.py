"""The last lines of a failing step's log, with the run's secrets masked; and the one rule
for what a run's logs mask, which the archive uses too (`run_masker`).

Masked values: every Secret key the run's steps read (`secretKeyRef`) and the Repository's
own forge credentials. Values are read when needed (a failure, an archived step), not kept
beyond the run.

A tail is read from the pod (`pods/log`); when the pod is gone (pruned, or deleted by hand),
from the archive, where the controller put the whole step log when it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from ci.archive.layout import BadNameError, StepKey
from ci.archive.steps import read_tail
from ci.archive.store import LogStore, StoreError
from ci.controller.runs import ObservedJob, RunSnapshot
from ci.forges.connections import credential_values
from ci.kube.credentials import CredentialsCache, SecretReader
from ci.kube.errors import CredentialsError
from ci.kube.pods import MAXIMUM_LOG_BYTES, LogReader
from ci.kube.repositories import Repository
from ci.masking import Masker

log = structlog.get_logger(__name__)


def run_masker(run: RunSnapshot, *, read_secret: SecretReader, also_mask: Iterable[str] = ()
               ) -> Masker:
    """What every log of `run` is masked with: the values of the Secret keys its steps read,
    and `also_mask` (the forge credentials). A Secret that cannot be read is logged and
    skipped: masking what we can beats showing nothing."""
    masker = Masker(value for value in also_mask if value)
    for name, key in sorted(run.secret_refs):
        try:
            data = read_secret(run.namespace, name) or {}
        except Exception as error:
            log.warning("cannot read a run's Secret to mask it", secret=name,
                        error=repr(error)[:200])
            continue
        value = data.get(key)
        if value:
            masker.add(value)  # its stripped, base64 and URL forms too
    return masker


def repository_run_masker(run: RunSnapshot, repository: Repository | None, *,
                          credentials: CredentialsCache, read_secret: SecretReader) -> Masker:
    """The one masker of a run's logs wherever they are kept or shown (the archive, the live
    view): `run_masker` plus the Repository's forge credentials and webhook secret."""
    also: list[str] = []
    if repository is not None:
        try:
            found = credentials.for_repository(repository)
        except CredentialsError as error:
            log.warning("cannot read the Repository's credentials to mask them",
                        error=str(error))
        else:
            also.extend(credential_values(found.forge))
            if found.webhook_secret:
                also.append(found.webhook_secret)
    return run_masker(run, read_secret=read_secret, also_mask=also)


class LogTails:
    def __init__(self, *, read_log: LogReader, read_secret: SecretReader, lines: int,
                 archive: LogStore | None = None) -> None:
        self._read_log = read_log
        self._read_secret = read_secret
        self._lines = lines
        self._archive = archive

    async def for_jobs(
        self, run: RunSnapshot, jobs: Iterable[ObservedJob], *, also_mask: Iterable[str] = (),
        repository: str | None = None,
    ) -> dict[str, str]:
        """`repository`: the Repository object's name, to find the archived log by."""
        wanted = [job for job in jobs if job.task_run is not None
                  and job.task_run.failing_step is not None and job.task_run.pod_name]
        if not wanted:
            return {}
        return await asyncio.to_thread(self._read, run, wanted, tuple(also_mask), repository)

    def _read(self, run: RunSnapshot, jobs: list[ObservedJob], also_mask: tuple[str, ...],
              repository: str | None) -> dict[str, str]:
        masker = run_masker(run, read_secret=self._read_secret, also_mask=also_mask)
        tails: dict[str, str] = {}
        for job in jobs:
            task_run, step = job.task_run, job.task_run.failing_step if job.task_run else None
            if task_run is None or step is None or task_run.pod_name is None:
                continue
            try:
                text = self._read_log(run.namespace, task_run.pod_name, step.container,
                                      self._lines)
            except Exception as error:  # a missing log must not hold back the status
                archived = self._archived_tail(run, job, step.name, repository)
                text = (archived if archived is not None
                        else f"(log unavailable: {type(error).__name__})")
            tails[job.name] = masker.mask(text)
        return tails

    def _archived_tail(self, run: RunSnapshot, job: ObservedJob, step: str,
                       repository: str | None) -> str | None:
        if self._archive is None or repository is None:
            return None
        try:
            key = StepKey(namespace=run.namespace, repository=repository, run=run.name,
                          job=job.pipeline_task, step=step)
            return read_tail(self._archive, key, lines=self._lines, max_bytes=MAXIMUM_LOG_BYTES)
        except (BadNameError, StoreError) as error:
            log.warning("cannot read a tail from the archive", run=f"{run.namespace}/{run.name}",
                        job=job.name, error=str(error)[:200])
            return None
