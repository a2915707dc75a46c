"""The typed model of a `.ci.yaml`, as the linter hands it on.

Only a spec without errors becomes these objects. Each object keeps the `Position` of its
mapping and of each of its keys, so that later stages (cycle detection, the planner) can still
point at the line a developer has to change. Positions never take part in equality.

Durations are whole seconds; lists are tuples; mappings keep the file's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from msgspec import Struct, field

from pipelines.events import EventKind
from pipelines.problems import Position
from pipelines.records import ComparedWithout

# Hard limits, named so that errors and docs can quote them.
MAX_SPEC_BYTES = 256 * 1024
MAX_NESTING_DEPTH = 32
MAX_YAML_NODES = 20_000
MAX_JOBS = 100
MAX_STEPS_PER_JOB = 50
MAX_MATRIX_COMBINATIONS = 64  # well under Tekton's own 256; each variant is one pod
MAX_RETRIES = 10
MAX_TIMEOUT_SECONDS = 24 * 3600
# A job without `timeout`: Tekton's own default-timeout-minutes, in both backends.
DEFAULT_JOB_TIMEOUT_SECONDS = 3600
MAX_NAME_LENGTH = 63  # a DNS-1123 label: Tekton pipeline task, container and label names
# A matrix variant is named `<job>-<suffix>`; the planner's suffix is at most this long
# (dash included), so the linter can refuse job names that would overflow MAX_NAME_LENGTH.
MAX_MATRIX_SUFFIX_LENGTH = 9

DEFAULT_JOB_NAME = "build"  # the job a top-level `steps:` shorthand becomes
DEFAULT_IMAGE = "docker.io/library/alpine:3.20"
DEFAULT_SPEC_PATH = ".ci.yaml"

_NOWHERE = Position("<none>", 0, 0)


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


class Located(ComparedWithout, frozen=True, kw_only=True):
    """Base for model objects: where the object starts, and where each of its keys is.

    Two objects that differ only in where they were written are equal.
    """

    __left_out__ = frozenset({"position", "key_positions"})

    position: Position = _NOWHERE
    key_positions: Mapping[str, Position] = field(default_factory=lambda: MappingProxyType({}))

    def position_of(self, key: str) -> Position:
        return self.key_positions.get(key, self.position)


class Patterns(Struct, frozen=True, kw_only=True):
    """Glob patterns with exclusions: `["main", "release/*", "!release/old"]`.

    Empty `include` means "everything not excluded".
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.include and not self.exclude


class When(Located, frozen=True, kw_only=True):
    """When a pipeline or job runs. Every given condition must hold; absent ones always hold."""

    events: tuple[EventKind, ...] = ()  # empty: any event
    branch: Patterns = field(default_factory=Patterns)
    tag: Patterns = field(default_factory=Patterns)
    paths: Patterns = field(default_factory=Patterns)


class SecretRef(Located, frozen=True, kw_only=True):
    """A key of a Kubernetes Secret (in the run's namespace) exposed as an env var."""

    env: str
    secret: str
    key: str


class Service(Located, frozen=True, kw_only=True):
    """A sidecar container that lives as long as its job (a database, a cache)."""

    name: str
    image: str
    env: Mapping[str, str] = field(default_factory=_frozen)
    command: tuple[str, ...] = ()


class Step(Located, frozen=True, kw_only=True):
    """One shell script. Runs with `bash -eo pipefail` when the image has bash, else `sh -e`."""

    run: str
    name: str | None = None
    image: str | None = None  # default: the job's image
    env: Mapping[str, str] = field(default_factory=_frozen)


class Matrix(Located, frozen=True, kw_only=True):
    """Axes of a job's matrix, expanded by the planner into one job per combination.

    `include` adds extra combinations; `exclude` removes combinations that match all of an
    entry's keys. Values are strings (YAML scalars are turned into their text).
    """

    axes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    include: tuple[Mapping[str, str], ...] = ()
    exclude: tuple[Mapping[str, str], ...] = ()


class Job(Located, frozen=True, kw_only=True):
    name: str
    steps: tuple[Step, ...]
    image: str = DEFAULT_IMAGE
    needs: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=_frozen)
    secrets: tuple[SecretRef, ...] = ()
    services: tuple[Service, ...] = ()
    matrix: Matrix | None = None
    timeout_seconds: int | None = None  # None: DEFAULT_JOB_TIMEOUT_SECONDS, cut to the run's
    retries: int = 0
    allow_failure: bool = False
    when: When | None = None
    share_workspace: bool = False  # use the run's shared PVC instead of an emptyDir
    is_finally: bool = False


class Concurrency(Located, frozen=True, kw_only=True):
    """How many runs of one group (a branch, or a pull request) may run at once.

    `limit` None means no limit. `cancel_in_progress` cancels older runs of the same group
    when a newer one starts.
    """

    limit: int | None = None
    cancel_in_progress: bool = False


class Spec(Located, frozen=True, kw_only=True):
    """A whole `.ci.yaml` that linted without errors."""

    jobs: tuple[Job, ...]  # regular jobs, in file order
    finally_jobs: tuple[Job, ...] = ()
    env: Mapping[str, str] = field(default_factory=_frozen)
    when: When | None = None
    concurrency: Concurrency = field(default_factory=Concurrency)
    # The whole pipeline; None: the backend derives it (the longest chain of job timeouts).
    timeout_seconds: int | None = None

    def job(self, name: str) -> Job:
        for job in (*self.jobs, *self.finally_jobs):
            if job.name == name:
                return job
        raise KeyError(name)
