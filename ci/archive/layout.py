"""Where each step's log and record live in a log store.

    <namespace>/<repository>/<run>/<job>/<step>.log.gz   the masked log, gzipped
    <namespace>/<repository>/<run>/<job>/<step>.json     its record (`StepRecord`)
    <namespace>/<repository>/deleted.json                the Repository was deleted then

`<repository>` is the Repository object's name, `<run>` the PipelineRun's (or local run's)
name and `<job>` the pipeline task (a matrix variant has its own), all DNS labels. A step
name is a DNS label too. So every segment is a safe file name, and no name is both an object
and a folder (`deleted.json` has a dot, which no run name has).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOG_SUFFIX = ".log.gz"
RECORD_SUFFIX = ".json"
DELETED = "deleted.json"

_SEGMENT = re.compile(r"[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class BadNameError(ValueError):
    """A name that is not a safe archive path (a bug, or a hostile request)."""


def check_name(name: str) -> None:
    segments = name.split("/")
    if not name or any(
        segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment) for segment in segments
    ):
        raise BadNameError(f"not an archive object name: {name!r}")


def check_label(what: str, value: str) -> str:
    if not _LABEL.fullmatch(value):
        raise BadNameError(f"{what} {value!r} is not a DNS label")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class StepKey:
    """One step of one job of one run of one Repository."""

    namespace: str
    repository: str
    run: str
    job: str
    step: str

    def __post_init__(self) -> None:
        for what in ("namespace", "repository", "run", "job", "step"):
            check_label(what, getattr(self, what))

    @property
    def job_prefix(self) -> str:
        return f"{run_prefix(self.namespace, self.repository, self.run)}{self.job}/"

    @property
    def log_name(self) -> str:
        return f"{self.job_prefix}{self.step}{LOG_SUFFIX}"

    @property
    def record_name(self) -> str:
        return f"{self.job_prefix}{self.step}{RECORD_SUFFIX}"


def repository_prefix(namespace: str, repository: str) -> str:
    return f"{check_label('namespace', namespace)}/{check_label('repository', repository)}/"


def run_prefix(namespace: str, repository: str, run: str) -> str:
    return f"{repository_prefix(namespace, repository)}{check_label('run', run)}/"


def parse_log_name(name: str) -> StepKey | None:
    """The step a stored log belongs to; None for any other object."""
    parts = name.split("/")
    if len(parts) != 5 or not parts[4].endswith(LOG_SUFFIX):
        return None
    namespace, repository, run, job, file = parts
    try:
        return StepKey(namespace=namespace, repository=repository, run=run, job=job,
                       step=file[: -len(LOG_SUFFIX)])
    except BadNameError:
        return None
