"""The last lines of a failing step's log, with the run's secrets masked.

Masked values: every Secret key the run's steps read (`secretKeyRef`) and the Repository's
own forge credentials. Values are read when needed (a failure), not kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

from ci.controller.runs import JobState, RunSnapshot
from ci.kube.credentials import SecretReader
from ci.kube.pods import LogReader
from ci.logs import Redactor

log = structlog.get_logger(__name__)


class LogTails:
    def __init__(self, *, read_log: LogReader, read_secret: SecretReader, lines: int) -> None:
        self._read_log = read_log
        self._read_secret = read_secret
        self._lines = lines

    async def for_jobs(
        self, run: RunSnapshot, jobs: Iterable[JobState], *, also_mask: Iterable[str] = ()
    ) -> dict[str, str]:
        wanted = [job for job in jobs if job.task_run is not None
                  and job.task_run.failing_step is not None and job.task_run.pod_name]
        if not wanted:
            return {}
        return await asyncio.to_thread(self._read, run, wanted, tuple(also_mask))

    def _read(self, run: RunSnapshot, jobs: list[JobState], also_mask: tuple[str, ...]
              ) -> dict[str, str]:
        redactor = Redactor(also_mask)
        for name, key in sorted(run.secret_refs):
            try:
                data = self._read_secret(run.namespace, name) or {}
            except Exception as error:  # masking what we can beats showing nothing
                log.warning("cannot read a run's Secret to mask it", secret=name,
                            error=repr(error)[:200])
                continue
            value = data.get(key)
            if value:
                redactor.add(value)  # its stripped, base64 and URL forms too
        tails: dict[str, str] = {}
        for job in jobs:
            task_run, step = job.task_run, job.task_run.failing_step if job.task_run else None
            if task_run is None or step is None or task_run.pod_name is None:
                continue
            try:
                text = self._read_log(run.namespace, task_run.pod_name, step.container,
                                      self._lines)
            except Exception as error:  # a missing log must not hold back the status
                text = f"(log unavailable: {type(error).__name__})"
            tails[job.name] = redactor.mask(text)
        return tails
