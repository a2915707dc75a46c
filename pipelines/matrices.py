"""The `matrix` of a job: reading it, expanding it, and checking `${{ matrix.KEY }}` uses.

One expansion (`combinations`) serves the linter, which refuses a matrix over
`MAX_MATRIX_COMBINATIONS` and placeholders some combination has no value for, and the
planner, which makes one job of each combination: the product of the axes in file order
(first axis slowest), minus the combinations that match every key of an `exclude` entry,
plus each `include` entry not already there. One pattern (`PLACEHOLDER`) finds the
`${{ matrix.KEY }}` texts both of them look at.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from pipelines import reading
from pipelines.parsing import Entry, Node
from pipelines.reading import Collector, join
from pipelines.spec import MAX_MATRIX_COMBINATIONS, Job, Matrix

# `python-version` is common (GitHub Actions); its variable is `MATRIX_PYTHON_VERSION`.
_AXIS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Any `${{ ... }}`; group 1 is the expression. Only `matrix.KEY` is replaced (`MATRIX_KEY`).
PLACEHOLDER = re.compile(r"\$\{\{(.*?)\}\}")
MATRIX_KEY = re.compile(rf"\s*matrix\.({_AXIS_NAME.pattern})\s*")  # keys as axes are named
# Above this many raw combinations we do not enumerate to apply `exclude`: no realistic
# list of exclusions brings a product this large back under the limit.
_ENUMERATION_LIMIT = 100 * MAX_MATRIX_COMBINATIONS


def matrix_env_name(key: str) -> str:
    """The environment variable that carries a matrix value to steps: `MATRIX_PYTHON`."""
    return f"MATRIX_{key.replace('-', '_').upper()}"


def read_matrix(out: Collector, node: Node, path: str) -> Matrix | None:
    matrix = reading.mapping(out, node, path)
    if matrix is None:
        return None
    axes: dict[str, tuple[str, ...]] = {}
    include: tuple[Mapping[str, str], ...] = ()
    exclude: tuple[Mapping[str, str], ...] = ()
    variables: dict[str, str] = {}
    include_entry = None
    for entry in matrix.entries:
        entry_path = join(path, entry.name)
        if entry.name == "include":
            include = _combinations(out, entry.value, entry_path, axes=None)
            include_entry = entry
            continue
        if entry.name == "exclude":
            exclude = _combinations(out, entry.value, entry_path, axes=axes)
            continue
        if not _AXIS_NAME.fullmatch(entry.name):
            out.error(entry.key, entry_path,
                      f"matrix key `{entry.name}` cannot become the environment variable "
                      f"`{matrix_env_name(entry.name)}`",
                      hint="use letters, digits and `_`, not starting with a digit")
            continue
        variable = matrix_env_name(entry.name)
        if variable in variables:
            out.error(entry.key, entry_path,
                      f"matrix keys `{variables[variable]}` and `{entry.name}` would both "
                      f"become `{variable}`", hint="rename one of them")
            continue
        variables[variable] = entry.name
        values = _values(out, entry.value, entry_path)
        if values is not None:
            axes[entry.name] = values
    if include_entry is not None:
        _check_include_variables(out, include_entry, join(path, "include"), include,
                                 variables=variables)
    if not axes and not include:
        out.error(matrix, path, f"`{path}` has no axes",
                  hint="add one, e.g. `python: [\"3.11\", \"3.12\"]`")
        return None
    built = Matrix(axes=MappingProxyType(axes), include=include, exclude=exclude,
                   position=matrix.position,
                   key_positions=MappingProxyType({e.name: e.key.position
                                                   for e in matrix.entries}))
    raw = _raw_size(axes)
    size = raw if raw > _ENUMERATION_LIMIT else len(combinations(built))
    if size > MAX_MATRIX_COMBINATIONS:
        out.error(matrix, path,
                  f"the matrix expands to {size} combinations, over the limit of "
                  f"{MAX_MATRIX_COMBINATIONS} (each is one pod)",
                  hint="drop values, add `exclude` entries, or split the job")
    elif size == 0:
        out.error(matrix, path, "the matrix has no combinations left after `exclude`")
    return built


def _check_include_variables(out: Collector, entry: Entry, path: str,
                             include: Sequence[Mapping[str, str]], *,
                             variables: Mapping[str, str]) -> None:
    """Two keys of one combination must not become the same `MATRIX_` variable."""
    for combination in include:
        seen = dict(variables)
        for key in combination:
            variable = matrix_env_name(key)
            other = seen.setdefault(variable, key)
            if other != key:
                out.error(entry.key, path,
                          f"matrix keys `{other}` and `{key}` would both become `{variable}`",
                          hint="rename one of them")


def _raw_size(axes: Mapping[str, Sequence[str]]) -> int:
    return math.prod(len(values) for values in axes.values()) if axes else 0


def combinations(matrix: Matrix) -> tuple[Mapping[str, str], ...]:
    """Every combination of `matrix`, in the order the module docstring gives."""
    names = tuple(matrix.axes)
    kept: list[dict[str, str]] = []
    for values in itertools.product(*matrix.axes.values()) if names else ():
        combination = dict(zip(names, values, strict=True))
        if not any(all(combination.get(k) == v for k, v in rule.items())
                   for rule in matrix.exclude):
            kept.append(combination)
    for entry in matrix.include:
        if dict(entry) not in kept:
            kept.append(dict(entry))
    return tuple(MappingProxyType(combination) for combination in kept)


def _values(out: Collector, node: Node, path: str) -> tuple[str, ...] | None:
    items = reading.sequence(out, node, path)
    if items is None:
        return None
    if not items.items:
        out.error(node, path, f"matrix axis `{path}` has no values")
        return None
    values: list[str] = []
    for index, item in enumerate(items.items):
        text = reading.scalar_text(out, item, join(path, index))
        if text is None:
            continue
        if text in values:
            out.error(item, join(path, index), f"`{text}` is listed twice in `{path}`")
            continue
        values.append(text)
    return tuple(values)


def _combinations(out: Collector, node: Node, path: str,
                  axes: Mapping[str, object] | None) -> tuple[Mapping[str, str], ...]:
    """`include` (any keys) or `exclude` (only keys of the axes above it)."""
    items = reading.sequence(out, node, path)
    if items is None:
        return ()
    combinations = []
    for index, item in enumerate(items.items):
        item_path = join(path, index)
        combination = reading.mapping(out, item, item_path)
        if combination is None:
            continue
        if not combination.entries:
            out.error(combination, item_path, f"`{item_path}` is empty")
            continue
        values: dict[str, str] = {}
        valid = True
        for entry in combination.entries:
            entry_path = join(item_path, entry.name)
            if axes is not None and entry.name not in axes:
                out.error(entry.key, entry_path,
                          f"`exclude` names `{entry.name}`, which is not a matrix axis",
                          hint=reading.suggestion(entry.name, list(axes))
                          or "list axes before `exclude`")
                valid = False
                continue
            if not _AXIS_NAME.fullmatch(entry.name):
                out.error(entry.key, entry_path,
                          f"matrix key `{entry.name}` is not a valid name",
                          hint="use letters, digits and `_`, not starting with a digit")
                valid = False
                continue
            text = reading.scalar_text(out, entry.value, entry_path)
            if text is None:
                valid = False
                continue
            values[entry.name] = text
        if valid:  # a broken entry is reported above; sizing it would only add noise
            combinations.append(MappingProxyType(values))
    return tuple(combinations)


def check_placeholders(out: Collector, *, job: Job,
                       uses: Sequence[tuple[str, Node, str]]) -> None:
    """`${{ matrix.KEY }}` is allowed in a matrix job's images, env values, `run` and service
    commands, for keys that every combination has a value for.

    `uses` lists those values (text, node, path); any other place that contains `${{` is
    reported by the linter itself.
    """
    every: set[str] = set()  # the keys every combination has
    some: set[str] = set()  # the keys at least one has
    if job.matrix is not None:
        # A matrix too large to enumerate is refused already; its axes are in every one.
        expanded = combinations(job.matrix) \
            if _raw_size(job.matrix.axes) <= _ENUMERATION_LIMIT else ()
        some.update(job.matrix.axes)
        for combination in job.matrix.include:
            some.update(combination)
        every = set.intersection(*(set(c) for c in expanded)) if expanded else set(some)
    for text, node, path in uses:
        for match in PLACEHOLDER.finditer(text):
            reference = MATRIX_KEY.fullmatch(match.group(1))
            if reference is None:
                out.error(node, path, f"`{match.group(0)}` is not supported",
                          hint="only `${{ matrix.KEY }}` is replaced; event data reaches "
                               "steps as environment variables")
            elif job.matrix is None:
                out.error(node, path,
                          f"`{match.group(0)}` is used, but job `{job.name}` has no `matrix`")
            elif reference.group(1) in some and reference.group(1) not in every:
                out.error(node, path,
                          f"`{match.group(0)}`: some combinations of the matrix have no "
                          f"`{reference.group(1)}`",
                          hint=f"give `{reference.group(1)}` in every `include` entry that "
                               "adds a combination")
            elif reference.group(1) not in every:
                out.error(node, path,
                          f"`{match.group(0)}`: the matrix has no key `{reference.group(1)}`",
                          hint=reading.suggestion(reference.group(1), some)
                          or f"keys are: {', '.join(sorted(some))}")
