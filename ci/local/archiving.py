"""Archiving a local run's step logs (`ferry serve` without a cluster) to the same store, in
the same shape, as the controller: `<namespace>/<repository>/<run>/<job>/<step>`, masked,
gzipped, with a record each (`ci.archive.steps`). `ferry run` does not archive.

An observer in front of the backend's own: each output line goes to a file of its step (on
disk, never held in memory), and when a job ends its last attempt's steps are archived in a
thread while the run goes on. Step times are the attempt's start plus the steps' durations,
as a local step has no container to say when it started.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import structlog

from ci.archive.layout import StepKey
from ci.archive.steps import READ_CHUNK, StepDetails, archive_step
from ci.archive.store import LogStore
from ci.local.outcomes import JobChange, JobResult, JobState, Observer, StepState
from ci.masking import Masker

log = structlog.get_logger(__name__)


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(path: Path) -> Iterator[bytes]:
    if not path.is_file():
        return
    with path.open("rb") as file:
        while chunk := file.read(READ_CHUNK):
            yield chunk


class ArchivingObserver:
    """Call order: use as the run's observer; `await close()` after the run (archives what
    is left, then removes the spool directory)."""

    def __init__(
        self,
        inner: Observer,
        *,
        archive: LogStore,
        namespace: str,
        repository: str,
        run: str,
        masker: Masker,
        max_bytes: int,
        variants: Mapping[str, str] | None = None,
        forge_repository: str = "",
        sha: str = "",
    ) -> None:
        self._inner = inner
        self._archive = archive
        self._namespace = namespace
        self._repository = repository
        self._run = run
        self._masker = masker
        self._max_bytes = max_bytes
        self._variants = dict(variants or {})
        self._forge_repository = forge_repository
        self._sha = sha
        self._spool = Path(tempfile.mkdtemp(prefix="ferry-step-logs-"))
        self._files: dict[tuple[str, str], BinaryIO] = {}
        self._started: dict[str, datetime.datetime] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def job_changed(self, change: JobChange) -> None:
        if change.state is JobState.RUNNING:
            # A new attempt: its steps' output starts afresh, as a retried pod's does.
            self._started[change.job] = datetime.datetime.now(datetime.UTC)
            for (job, step) in [key for key in self._files if key[0] == change.job]:
                self._files.pop((job, step)).close()
                self._path(job, step).unlink(missing_ok=True)
        elif change.state.is_final and change.result is not None and change.result.attempts:
            for (job, step) in [key for key in self._files if key[0] == change.job]:
                self._files.pop((job, step)).close()
            started = self._started.get(change.job, datetime.datetime.now(datetime.UTC))
            self._tasks.append(asyncio.get_running_loop().create_task(
                asyncio.to_thread(self._archive_job, change.result, started)))
        self._inner.job_changed(change)

    def step_output(self, *, job: str, step: str, line: str) -> None:
        file = self._files.get((job, step))
        if file is None:
            file = self._files[job, step] = self._path(job, step).open("ab")
        file.write(line.encode(errors="replace") + b"\n")
        self._inner.step_output(job=job, step=step, line=line)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for file in self._files.values():
            file.close()
        self._files.clear()
        shutil.rmtree(self._spool, ignore_errors=True)

    def _path(self, job: str, step: str) -> Path:
        return self._spool / f"{job}--{step}.log"

    def _archive_job(self, result: JobResult, started: datetime.datetime) -> None:
        moment = started
        for step in result.steps:
            begun, moment = moment, moment + datetime.timedelta(seconds=step.seconds)
            ran = step.state is not StepState.NOT_RUN
            details = StepDetails(
                job=result.name, variant=self._variants.get(result.name, ""),
                exit_code=step.exit_code, started_at=_stamp(begun) if ran else None,
                finished_at=_stamp(moment) if ran else None,
                forge_repository=self._forge_repository, sha=self._sha,
                reason="" if step.state in (StepState.SUCCESS, StepState.FAILURE)
                else step.state.value,
            )
            try:
                key = StepKey(namespace=self._namespace, repository=self._repository,
                              run=self._run, job=result.name, step=step.name)
                archive_step(self._archive, key=key, masker=self._masker, details=details,
                             chunks=_chunks(self._path(result.name, step.name)),
                             max_bytes=self._max_bytes)
            except Exception as error:  # a bad name, a full store: the run goes on
                log.warning("could not archive a step log", job=result.name, step=step.name,
                            error=f"{type(error).__name__}: {str(error)[:200]}")


def variants_of(jobs: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, str]:
    """Each matrix job's values as the controller writes them (from `MATRIX_<KEY>`, see
    `ci.controller.runs`): "key=value, ..." by key, keys lowercased with `_` for `-`."""
    return {name: ", ".join(sorted(f"{key.replace('-', '_').lower()}={value}"
                                   for key, value in matrix.items()))
            for name, matrix in jobs if matrix}
