"""`ferry lint` refuses exactly what planning and compiling refuse: a spec that lints clean
plans and compiles for every event; every rule they enforce is a lint error with a position."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.events import Event, EventKind, PullRequest
from pipelines.linting import lint_spec
from pipelines.planning import NothingToRun, plan
from pipelines.problems import Severity
from pipelines.tekton import compile_pipeline_run
from pipelines.tekton_rules import violations

EVENTS = (
    Event(kind=EventKind.PUSH, repository="o/r", repository_url="https://git.example/o/r.git",
          sha="a" * 40, ref="refs/heads/main", branch="main"),
    Event(kind=EventKind.TAG, repository="o/r", repository_url="https://git.example/o/r.git",
          sha="b" * 40, ref="refs/tags/v1", tag="v1"),
    Event(kind=EventKind.PULL_REQUEST, repository="o/r",
          repository_url="https://git.example/o/r.git", sha="c" * 40, ref="refs/pull/1/head",
          branch="main", pull_request=PullRequest(number=1, title="t", head_branch="f",
                                                  base_branch="main", author="dev")),
)


def errors_of(text: str) -> list[str]:
    _, problems = lint_spec(text)
    return [f"{p.position.line}:{p.position.column}: {p.message}" for p in problems
            if p.severity is Severity.ERROR]


def test_retries_with_allow_failure_is_a_lint_error_at_retries() -> None:
    errors = errors_of("jobs:\n  flaky:\n    retries: 2\n    allow_failure: true\n"
                       "    steps: [make]\n")
    assert len(errors) == 1 and errors[0].startswith("3:14: job `flaky` sets both `retries`")


def test_tekton_variables_are_lint_errors_where_they_are_written() -> None:
    errors = errors_of("steps:\n  - run: echo $(params.branch)\n  - run: ok\n"
                       "env:\n  X: $(context.pipelineRun.name)\n")
    assert [error.split(":")[0] for error in errors] == ["2", "5"]
    assert all("would be replaced by Tekton" in error for error in errors)


def test_tekton_variables_written_with_double_quoted_escapes_are_lint_errors() -> None:
    # The file never holds `$(`: YAML's escapes write it (a file without `$(` or `\\` skips
    # the walk that looks for variables, so these are the cases that must not skip it).
    errors = errors_of('steps:\n  - run: "echo \\x24(params.branch)"\n'
                       '  - run: "echo $\\\n    (context.taskRun.name)"\n')
    assert [error.split(":")[0] for error in errors] == ["2", "3"]
    assert all("would be replaced by Tekton" in error for error in errors)


def test_tekton_variables_in_when_and_unused_blocks_do_not_reach_the_run() -> None:
    assert errors_of("x-unused: $(params.x)\nwhen:\n  branch: '$(params.x)'\nsteps: [make]\n") \
        == []


def test_matrix_placeholders_in_a_job_without_a_matrix_are_errors_not_literal_text() -> None:
    errors = errors_of("jobs:\n  test:\n    steps:\n      - run: echo ${{ matrix.python }}\n")
    assert errors == ["4:14: `${{ }}` in `run` is replaced only in a matrix job"]


def test_an_unknown_matrix_key_in_run_or_a_service_command_is_an_error() -> None:
    errors = errors_of(
        "jobs:\n  test:\n    matrix:\n      python: ['3.12']\n"
        "    services:\n      db:\n        image: postgres:16\n"
        "        command: [run, '${{ matrix.pg }}']\n"
        "    steps:\n      - run: echo ${{ matrix.pyton }}\n")
    assert len(errors) == 2
    assert any("the matrix has no key `pg`" in error for error in errors)
    assert any("the matrix has no key `pyton`" in error for error in errors)


def test_a_placeholder_some_include_combination_has_no_value_for_is_an_error() -> None:
    # `include: [{os: linux}]` adds a combination of its own, which has no `python`: the
    # planner could not replace the placeholder in that variant.
    errors = errors_of("jobs:\n  test:\n    matrix:\n      python: ['3.12']\n"
                       "      include:\n        - os: linux\n"
                       "    image: python:${{ matrix.python }}\n    steps: [make]\n")
    assert errors == ["7:12: `${{ matrix.python }}`: some combinations of the matrix have no "
                      "`python`"]


def test_an_include_that_extends_every_combination_with_the_key_lints_clean() -> None:
    assert errors_of("jobs:\n  test:\n    matrix:\n      python: ['3.12']\n"
                     "      include:\n        - {python: '3.13', os: linux}\n"
                     "    image: python:${{ matrix.python }}\n    steps: [make]\n") == []


def test_matrix_keys_are_read_with_one_pattern_dots_are_not_keys() -> None:
    errors = errors_of("jobs:\n  test:\n    matrix:\n      python: ['3.12']\n"
                       "    image: python:${{ matrix.python.minor }}\n    steps: [make]\n")
    assert errors == ["5:12: `${{ matrix.python.minor }}` is not supported"]


def test_placeholders_in_the_steps_shorthand_are_errors_not_literal_images() -> None:
    errors = errors_of("image: python:${{ matrix.v }}\nsteps:\n  - run: make\n"
                       "    image: alpine:${{ matrix.v }}\n")
    assert errors == ["1:8: `${{ matrix.v }}` is used, but job `build` has no `matrix`",
                      "4:12: `${{ matrix.v }}` is used, but job `build` has no `matrix`"]


def test_include_keys_that_become_the_same_variable_as_an_axis_are_errors() -> None:
    # Both set `MATRIX_A_B`; the planner kept the last one without a word.
    errors = errors_of("jobs:\n  t:\n    matrix:\n      a_b: [x]\n      include:\n"
                       "        - {a-b: y, a_b: z}\n    steps: [make]\n")
    assert errors == ["5:7: matrix keys `a_b` and `a-b` would both become `MATRIX_A_B`"]


def test_events_nothing_produces_are_refused_with_what_to_use() -> None:
    _, problems = lint_spec(
        "when:\n  event: [push, comment, manual, schedule]\nsteps: [make]\n")
    refused = [p for p in problems if p.severity is Severity.ERROR]
    assert [p.message for p in refused] == ["nothing starts a run with event `comment`"]
    assert refused[0].hint is not None and "pull_request" in refused[0].hint


def test_an_unknown_event_is_refused_naming_every_produced_one() -> None:
    _, problems = lint_spec("when:\n  event: nightly\nsteps: [make]\n")
    refused = [p for p in problems if p.severity is Severity.ERROR]
    assert [p.message for p in refused] == ["unknown event `nightly`"]
    assert refused[0].hint == "events are: manual, pull_request, push, schedule, tag"


# A small grammar of specs, with the texts that used to pass lint and fail later.
TEXTS = st.sampled_from(["make test", "echo $FERRY_BRANCH", "echo $(params.x)",
                         "echo ${{ matrix.python }}", "echo ${{ matrix.nope }}",
                         "echo ${{ matrix.os }}", "echo ${{matrix.python}}",
                         "echo ${{ github.ref }}", "echo $(date)"])
IMAGES = st.sampled_from(["python:3.12", "python:${{ matrix.python }}", "$(params.image):1"])
MATRICES = st.sampled_from([
    {"python": ["3.11", "3.12"]},
    # `include` adding a combination without `python`: `${{ matrix.python }}` has no value.
    {"python": ["3.11"], "include": [{"os": "linux"}]},
    {"python": ["3.11"], "os": ["linux"], "include": [{"python": "3.13", "os": "mac"}]},
    {"python": ["3.11", "3.12"], "exclude": [{"python": "3.11"}]},
])
EVENT_NAMES = st.lists(st.sampled_from([kind.value for kind in EventKind]), max_size=2)


@st.composite
def specs(draw: Any) -> dict[str, Any]:
    jobs: dict[str, Any] = {}
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        job: dict[str, Any] = {"image": draw(IMAGES),
                               "steps": [{"run": draw(TEXTS)}
                                         for _ in range(draw(st.integers(1, 3)))]}
        if draw(st.booleans()):
            job["matrix"] = draw(MATRICES)
        if index and draw(st.booleans()):
            job["needs"] = [f"job{draw(st.integers(0, index - 1))}"]
        if draw(st.booleans()):
            job["retries"] = draw(st.integers(0, 2))
        if draw(st.booleans()):
            job["allow_failure"] = True
        if draw(st.booleans()):
            job["env"] = {"VALUE": draw(TEXTS)}
        if draw(st.booleans()):
            job["when"] = {"event": draw(EVENT_NAMES)}
        jobs[f"job{index}"] = job
    if draw(st.booleans()):  # the `steps:` shorthand (job0's steps): no matrix there
        return {"image": jobs["job0"]["image"],
                "steps": [{**step, "image": draw(IMAGES)} for step in jobs["job0"]["steps"]]}
    return {"jobs": jobs}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_every_spec_that_lints_clean_plans_and_compiles_for_every_event(spec: dict[str, Any]
                                                                        ) -> None:
    source = yaml.safe_dump(spec)
    linted, _problems = lint_spec(source)
    if linted is None:
        return
    for event in EVENTS:
        planned = plan(linted, event)  # raises SpecError if lint let something through
        if isinstance(planned, NothingToRun):
            continue
        run = compile_pipeline_run(planned, event)
        assert violations(run) == (), source
        assert "${{" not in json.dumps(run), source  # no placeholder reaches the run as text
