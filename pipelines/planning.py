"""The plan: what runs for one event, backend-neutral (the Tekton and the local backend alike).

The contract, in call order, for every caller (the webhook receiver, `ferry render`,
`ferry run`):

1. `pipelines.preparing.prepare(text, path=..., event=...)` parses and lints the spec and
   calls `plan` below: a `Prepared` (the spec, its warnings and the plan), or `Problems`.
2. `plan(spec, event)` -> `Plan`, or `NothingToRun(reason)` when the pipeline-level `when`
   does not hold or every regular job is skipped. It takes a `Spec` the linter made and
   refuses nothing: every rule (known `needs`, no cycles, matrix size and keys) is the
   linter's, so that `ferry lint` says all of it with `file:line:col`. A hand-made `Spec`
   that breaks one raises `ValueError`.
3. The backend walks `Plan.jobs` (already in dependency order: each job comes after all of its
   `needs`) and then `Plan.finally_jobs`, which run whatever happened to the regular jobs.
   For each job it runs `PlannedJob.steps` in order, each with `PlannedJob.env_for(step)`, in a
   fresh workspace holding the repository at `event.sha` (or the run's shared workspace when
   `share_workspace` is set). Event data is the backend's to expose (as `FERRY_*` variables);
   the plan never copies it into scripts.

Decisions:

- Environment precedence, lowest first: pipeline `env` < job `env` < `MATRIX_<KEY>` variables
  < step `env`. Secrets are separate (`PlannedJob.secrets`); backends set them after plain
  variables, so a secret wins over a plain variable of the same name.
- Matrix: the axes' product in file order (first axis slowest), minus every combination that
  matches all keys of an `exclude` entry, plus each `include` entry not already present. Each
  combination is one planned job named `<job>-<value>-<value>` (DNS-1123, <= 63 characters,
  a short hash appended when cut or when two names would clash). `${{ matrix.KEY }}` is
  replaced in the job and step `image`, env values, `run`, and service images and env: all
  spec-controlled text, never event data.
- `needs: [test]` on a matrix job means every variant of `test`.
- A job whose `when` does not hold is skipped, and so is every job that needs a skipped job,
  transitively: running `deploy` because `test` was filtered out would skip a safety check.
  Skipped jobs are listed in `Plan.skipped` with their reason.
- Finally jobs are filtered by their own `when` but take no part in the DAG (`needs` is not
  allowed on them by the linter; if present it is ignored).
- Order: topological; among jobs that are ready at the same time, file order (and matrix
  order within a job).
- Re-running some jobs (`rerun`, for `/retest`): the jobs selected, every job that needs
  one of them (transitively), and the finally jobs. A `needs` on a job that is not re-run
  (it passed in the run re-run) counts as satisfied and is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from msgspec import Struct, field
from msgspec.structs import replace

from pipelines.events import Event
from pipelines.filtering import why_not
from pipelines.matrices import MATRIX_KEY, PLACEHOLDER, combinations, matrix_env_name
from pipelines.names import dns_label, fit_label, short_hash
from pipelines.problems import Position
from pipelines.records import ComparedWithout
from pipelines.spec import Job, SecretRef, Spec

_NOWHERE = Position("<none>", 0, 0)


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


class PlannedStep(ComparedWithout, frozen=True, kw_only=True):
    __left_out__ = frozenset({"position"})

    name: str  # unique within the job, DNS-1123, never "clone" (the backend's own first step)
    script: str  # the `run` text, matrix variables replaced
    image: str
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    position: Position = _NOWHERE  # of the spec step


class PlannedService(Struct, frozen=True, kw_only=True):
    name: str
    image: str
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    command: tuple[str, ...] = ()


class PlannedJob(ComparedWithout, frozen=True, kw_only=True):
    __left_out__ = frozenset({"position"})

    name: str  # unique across the plan, DNS-1123 label <= 63
    spec_job: str  # the job's name in `.ci.yaml` (several planned jobs share it in a matrix)
    matrix: Mapping[str, str]  # this variant's values; empty for a job without a matrix
    image: str
    steps: tuple[PlannedStep, ...]
    env: Mapping[str, str]  # pipeline < job < MATRIX_*; steps add their own on top
    secrets: tuple[SecretRef, ...] = ()
    services: tuple[PlannedService, ...] = ()
    needs: tuple[str, ...] = ()  # planned job names
    timeout_seconds: int | None = None  # None: the backend's default
    retries: int = 0
    allow_failure: bool = False
    share_workspace: bool = False
    is_finally: bool = False
    position: Position = _NOWHERE  # of the spec job

    def env_for(self, step: PlannedStep) -> Mapping[str, str]:
        """The step's effective plain environment (secrets not included)."""
        return _frozen({**self.env, **step.env})


class SkippedJob(Struct, frozen=True, kw_only=True):
    name: str  # the job's name in `.ci.yaml`
    reason: str


class Plan(Struct, frozen=True, kw_only=True):
    jobs: tuple[PlannedJob, ...]  # non-empty, dependency order
    finally_jobs: tuple[PlannedJob, ...] = ()
    skipped: tuple[SkippedJob, ...] = ()
    timeout_seconds: int | None = None  # the whole run; None: the backend derives it

    @property
    def all_jobs(self) -> tuple[PlannedJob, ...]:
        return (*self.jobs, *self.finally_jobs)


class NothingToRun(Struct, frozen=True, kw_only=True):
    reason: str
    skipped: tuple[SkippedJob, ...] = ()


def plan(spec: Spec, event: Event) -> Plan | NothingToRun:
    """Filter, expand and order `spec` for `event` (see the module docstring)."""
    reason = why_not(spec.when, event)
    if reason is not None:
        return NothingToRun(reason=f"the pipeline's `when` does not hold: {reason}")

    skipped = _skipped_jobs(spec.jobs, event)
    namer = _Namer()
    # Every variant's name first, so that each planned job is built once, with its needs.
    named = {job.name: _variants(job, namer) for job in spec.jobs if job.name not in skipped}
    variants = {
        job.name: [
            _planned(job, spec=spec, name=name, values=values,
                     needs=tuple(need for needed in job.needs
                                 for need, _ in named.get(needed, ())))
            for name, values in named[job.name]
        ]
        for job in spec.jobs
        if job.name in named
    }
    finally_jobs: list[PlannedJob] = []
    for job in spec.finally_jobs:
        job_reason = why_not(job.when, event)
        if job_reason is None:
            finally_jobs.extend(_planned(job, spec=spec, name=name, values=values, needs=())
                                for name, values in _variants(job, namer))
        else:
            skipped[job.name] = job_reason

    skipped_jobs = tuple(SkippedJob(name=name, reason=text) for name, text in skipped.items())
    if not variants:
        return NothingToRun(reason="every job is skipped for this event", skipped=skipped_jobs)
    ordered = _topological(spec.jobs, variants)
    return Plan(
        jobs=ordered,
        finally_jobs=tuple(finally_jobs),
        skipped=skipped_jobs,
        timeout_seconds=spec.timeout_seconds,
    )


def rerun(planned: Plan, selected: frozenset[str]) -> Plan | None:
    """The part of `planned` that re-runs the planned jobs named in `selected` (see the
    module docstring); None when none of them is a regular job of the plan (a run needs
    one: finally jobs alone are not re-run)."""
    kept: set[str] = {job.name for job in planned.jobs if job.name in selected}
    for job in planned.jobs:  # dependency order: a job's needs come before it
        if job.name not in kept and any(need in kept for need in job.needs):
            kept.add(job.name)
    jobs = tuple(
        replace(job, needs=tuple(need for need in job.needs if need in kept))
        for job in planned.jobs
        if job.name in kept
    )
    if not jobs:
        return None  # a plan has regular jobs; finally alone cannot be re-run
    return replace(planned, jobs=jobs, skipped=())


def jobs_named(planned: Plan, name: str) -> frozenset[str]:
    """The planned jobs `name` means: one planned job, or every variant of a `.ci.yaml` job."""
    return frozenset(
        job.name for job in planned.all_jobs if name in (job.name, job.spec_job)
    )


def _skipped_jobs(jobs: tuple[Job, ...], event: Event) -> dict[str, str]:
    """Jobs whose `when` fails, then (in dependency order) jobs needing a skipped job."""
    skipped: dict[str, str] = {}
    for job in jobs:
        reason = why_not(job.when, event)
        if reason is not None:
            skipped[job.name] = reason
    changed = True
    while changed:
        changed = False
        for job in jobs:
            if job.name in skipped:
                continue
            for dependency in job.needs:
                if dependency in skipped:
                    skipped[job.name] = f"it needs `{dependency}`, which is skipped"
                    changed = True
                    break
    return skipped


def _topological(
    jobs: tuple[Job, ...], variants: Mapping[str, list[PlannedJob]]
) -> tuple[PlannedJob, ...]:
    """Kahn's algorithm over spec jobs; ties broken by file order."""
    remaining = [job for job in jobs if job.name in variants]
    placed: set[str] = set()
    ordered: list[PlannedJob] = []
    while remaining:
        ready = next((job for job in remaining if all(d in placed for d in job.needs)), None)
        if ready is None:  # the linter refuses both; only a hand-made `Spec` gets here
            raise ValueError(f"jobs {[job.name for job in remaining]} need a job that is "
                             "not in the spec, or each other in a cycle")
        remaining.remove(ready)
        placed.add(ready.name)
        ordered.extend(variants[ready.name])
    return tuple(ordered)


def _variants(job: Job, namer: _Namer) -> list[tuple[str, Mapping[str, str]]]:
    """The planned name and matrix values of each variant of `job` (one without a matrix)."""
    if job.matrix is None:
        return [(namer.name(job.name, ()), {})]
    return [(namer.name(job.name, tuple(values.values())), values)
            for values in combinations(job.matrix)]


def _planned(
    job: Job,
    *,
    spec: Spec,
    name: str,
    values: Mapping[str, str],
    needs: tuple[str, ...],
) -> PlannedJob:
    def substitute(text: str) -> str:
        if job.matrix is None:
            return text  # the linter refuses `${{ }}` outside a matrix job

        def matrix_value(match: re.Match[str]) -> str:
            reference = MATRIX_KEY.fullmatch(match.group(1))
            if reference is None:
                return match.group(0)  # not ours to replace (the linter refuses it)
            if reference.group(1) not in values:  # the linter refuses it too
                raise ValueError(f"job `{job.name}` uses {match.group(0)!r}, but a "
                                 "combination of its matrix has no value for it")
            return values[reference.group(1)]

        return PLACEHOLDER.sub(matrix_value, text) if "${{" in text else text

    def substitute_all(mapping: Mapping[str, str]) -> dict[str, str]:
        return {key: substitute(value) for key, value in mapping.items()}

    matrix_env = {matrix_env_name(key): value for key, value in values.items()}
    image = substitute(job.image)
    step_names = _StepNamer()
    steps = tuple(
        PlannedStep(
            name=step_names.name(step.name, index),
            script=substitute(step.run),
            image=substitute(step.image) if step.image else image,
            env=_frozen(substitute_all(step.env)),
            position=step.position,
        )
        for index, step in enumerate(job.steps, start=1)
    )
    services = tuple(
        PlannedService(
            name=service.name,
            image=substitute(service.image),
            env=_frozen(substitute_all(service.env)),
            command=tuple(substitute(part) for part in service.command),
        )
        for service in job.services
    )
    return PlannedJob(
        name=name,
        spec_job=job.name,
        matrix=_frozen(values),
        image=image,
        steps=steps,
        env=_frozen({**substitute_all(spec.env), **substitute_all(job.env), **matrix_env}),
        secrets=job.secrets,
        services=services,
        needs=needs,
        timeout_seconds=job.timeout_seconds,
        retries=job.retries,
        allow_failure=job.allow_failure,
        share_workspace=job.share_workspace,
        is_finally=job.is_finally,
        position=job.position,
    )


class _Namer:
    """Unique planned-job names: spec job names as they are, matrix variants slugged."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def name(self, job: str, values: tuple[str, ...]) -> str:
        base = dns_label("-".join((job, *values))) if values else job
        name = fit_label(base)
        if name in self._taken:
            name = fit_label(f"{base}-{short_hash(job, *values)}")
        self._taken.add(name)
        return name


class _StepNamer:
    """Unique step names within a job; `clone` is reserved for the backend's checkout."""

    _LIMIT = 58  # Tekton names the container `step-<name>`, cut at 63 characters

    def __init__(self) -> None:
        self._taken: set[str] = {"clone"}

    def name(self, given: str | None, index: int) -> str:
        base = fit_label(dns_label(given), limit=self._LIMIT) if given else f"run-{index}"
        name = base
        if name in self._taken:
            name = fit_label(f"{base}-{index}", limit=self._LIMIT)
        self._taken.add(name)
        return name
