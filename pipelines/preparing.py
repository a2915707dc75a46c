"""From a spec's text to what runs for one event: the one path every caller takes.

`prepare(text, path=..., event=...)` parses, lints, filters and plans. `ferry lint` (without
an event), `ferry render`, `ferry run` and the receiver all call it, so they cannot disagree
about a spec: either every problem, errors first, each with `file:line:col` (`Problems`), or
the spec, its warnings and the plan (`Prepared`). Everything planning, compiling or a backend
would refuse is a lint error, so a `Prepared` plan compiles and runs
(`tests/unit/pipelines/test_lint_agrees.py` checks it on generated specs).

The receiver learns a pull request's changed files only after it has read the spec (it asks
the forge only when a `when.paths` needs them): `Prepared.for_event` plans the same spec for
the completed event, without reading the text again.

`Specs` is `prepare` for a process that meets the same text again and again (the receiver:
every push to a repository reads the same `.ci.yaml`): it parses and lints each text once,
and plans it for every event. Parsing and linting were 8.6% of the receiver's CPU per push
(`python3 -m bench.webhooks --profile`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import overload

from msgspec import Struct

from pipelines.events import Event
from pipelines.linting import lint_spec
from pipelines.planning import NothingToRun, Plan, plan
from pipelines.problems import Problem, Severity
from pipelines.spec import DEFAULT_SPEC_PATH, Spec


class Problems(Struct, frozen=True, kw_only=True):
    """A spec that cannot run: every problem (at least one error), errors first."""

    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)


class Linted(Struct, frozen=True, kw_only=True):
    """A spec without errors, and its warnings (which never block a run)."""

    spec: Spec
    warnings: tuple[Problem, ...] = ()


class Prepared(Linted, frozen=True, kw_only=True):
    """A spec without errors, its warnings, and what runs for the event."""

    outcome: Plan | NothingToRun

    def for_event(self, event: Event) -> Prepared:
        """The same spec planned for `event` (e.g. the same event with its changed files)."""
        return Prepared(spec=self.spec, warnings=self.warnings, outcome=plan(self.spec, event))


@overload
def prepare(text: str | bytes, *, path: str = ..., event: Event) -> Prepared | Problems: ...


@overload
def prepare(text: str | bytes, *, path: str = ..., event: None = None) -> Linted | Problems: ...


def prepare(text: str | bytes, *, path: str = DEFAULT_SPEC_PATH,
            event: Event | None = None) -> Prepared | Linted | Problems:
    """Parse, lint, filter and plan `text` (read from `path`, which problems name) for
    `event`; without an event, stop after linting (`ferry lint`)."""
    linted = lint_spec(text, filename=path)
    if event is None:
        spec, problems = linted
        return Problems(problems=problems) if spec is None else Linted(spec=spec,
                                                                       warnings=problems)
    return _planned(linted, event)


def _planned(linted: tuple[Spec | None, tuple[Problem, ...]], event: Event
             ) -> Prepared | Problems:
    spec, problems = linted
    if spec is None:
        return Problems(problems=problems)
    return Prepared(spec=spec, warnings=problems, outcome=plan(spec, event))


# Texts `Specs` keeps linted: a receiver's repositories' specs, a few kilobytes each.
SPECS_KEPT = 256


class Specs:
    """`prepare` that lints each (text, path) once, keeping the `kept` most recently used.
    Specs and problems are immutable, so every event of the same text shares them; a text
    that differs in one byte is a new entry. Not thread-safe: call it from one event loop."""

    def __init__(self, *, kept: int = SPECS_KEPT) -> None:
        self._kept = kept
        self._linted: OrderedDict[tuple[str | bytes, str],
                                  tuple[Spec | None, tuple[Problem, ...]]] = OrderedDict()

    def prepare(self, text: str | bytes, *, path: str = DEFAULT_SPEC_PATH,
                event: Event) -> Prepared | Problems:
        key = (text, path)
        linted = self._linted.get(key)
        if linted is None:
            linted = lint_spec(text, filename=path)
            self._linted[key] = linted
            if len(self._linted) > self._kept:
                self._linted.popitem(last=False)
        else:
            self._linted.move_to_end(key)
        return _planned(linted, event)
