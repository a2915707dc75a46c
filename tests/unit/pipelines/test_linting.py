"""The linter: every problem at once, each where the developer has to look, and the model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.events import EventKind
from pipelines.linting import lint_spec, load_spec
from pipelines.problems import Severity, SpecError
from pipelines.spec import DEFAULT_IMAGE, DEFAULT_JOB_NAME, Spec

SPECS = Path(__file__).parent / "specs"
EXAMPLES = Path(__file__).parents[3] / "examples"
_EXPECT = re.compile(r"^# expect: (.*)$", re.MULTILINE)


def _files(folder: str) -> list[Path]:
    return sorted((SPECS / folder).glob("*.yaml"))


def spec_of(text: str) -> Spec:
    spec, warnings = load_spec(text)
    assert warnings == ()
    return spec


def problems_of(text: str) -> list[str]:
    """`line:col: severity: message` of each problem, as `ferry lint` prints them."""
    _, problems = lint_spec(text)
    return [f"{p.position.line}:{p.position.column}: {p.severity}: {p.message}"
            for p in problems]


@pytest.mark.parametrize("path", [*_files("valid"), EXAMPLES / "hello" / ".ci.yaml"],
                         ids=lambda path: path.parent.name + "/" + path.name)
def test_valid_specs_load_without_problems(path: Path) -> None:
    spec, warnings = load_spec(path.read_bytes(), filename=str(path))
    assert warnings == ()
    assert spec.jobs


@pytest.mark.parametrize("path", _files("invalid"), ids=lambda path: path.name)
def test_invalid_specs_report_exactly_the_expected_problems(path: Path) -> None:
    """Each fixture lists, in comments at its end, every problem `ferry lint` must print."""
    text = path.read_text()
    expected = _EXPECT.findall(text)
    assert expected, f"{path.name} lists no `# expect:` lines"
    spec, problems = lint_spec(text, filename=path.name)
    printed = [f"{p.position.line}:{p.position.column}: {p.severity}: {p.message}"
               for p in problems]
    assert printed == expected
    assert {p.position.file for p in problems} == {path.name}
    if any(p.severity == Severity.ERROR for p in problems):
        assert spec is None
        with pytest.raises(SpecError) as caught:
            load_spec(text, filename=path.name)
        assert caught.value.problems == problems
    else:
        assert spec is not None


def test_problems_carry_a_dotted_path_and_a_hint() -> None:
    _, problems = lint_spec("jobs:\n  test:\n    step: [pytest]\n")
    unknown = next(p for p in problems if "unknown key" in p.message)
    assert (unknown.path, unknown.hint) == ("jobs.test.step", "did you mean `steps`?")
    assert str(unknown) == (".ci.yaml:3:5: error: unknown key `step` in `jobs.test` "
                            "(did you mean `steps`?)")


def test_load_spec_returns_warnings_and_raises_with_warnings_included() -> None:
    spec, warnings = load_spec("steps: [make]\nimage: python\n")
    assert [w.message for w in warnings] == ["image `python` is not pinned to a version"]
    assert spec.jobs[0].image == "python"
    with pytest.raises(SpecError) as caught:
        load_spec("steps: [make]\nimage: python\ntimeout: 0\n")
    assert [p.severity for p in caught.value.problems] == [Severity.ERROR, Severity.WARNING]


def test_top_level_steps_become_one_default_job() -> None:
    spec = spec_of("steps:\n  - make test\n  - {run: make lint, name: lint}\n")
    (job,) = spec.jobs
    assert (job.name, job.image) == (DEFAULT_JOB_NAME, DEFAULT_IMAGE)
    assert [(step.run, step.name) for step in job.steps] == [("make test", None),
                                                            ("make lint", "lint")]


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2h", 7200), ("1h1m1s", 3661)],
)
def test_durations_become_seconds(written: str, seconds: int) -> None:
    assert spec_of(f"timeout: {written}\nsteps: [make]\n").timeout_seconds == seconds


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("0", "`timeout` is 0s; it must be more than 0 and at most 86400s (24h)"),
        ("25h", "`timeout` is 90000s; it must be more than 0 and at most 86400s (24h)"),
        ("1d", "`timeout` must be a duration like `90s`, `10m` or `1h30m`, or a number of "
               "seconds"),
        ("true", "`timeout` must be a duration like `90s`, `10m` or `1h30m`, or a number of "
                 "seconds"),
    ],
)
def test_bad_durations_say_what_is_allowed(written: str, message: str) -> None:
    assert problems_of(f"timeout: {written}\nsteps: [make]\n") == [f"1:10: error: {message}"]


def test_the_model_carries_every_feature() -> None:
    spec, _ = load_spec((SPECS / "valid" / "full.yaml").read_text())
    test = spec.job("test")
    assert test.matrix is not None
    assert test.matrix.axes == {"python-version": ("3.11", "3.12", "3.10"),
                                "db": ("postgres", "mysql")}
    assert test.matrix.exclude == ({"python-version": "3.10", "db": "mysql"},)
    assert [(s.env, s.secret, s.key) for s in test.secrets] == [("PYPI_TOKEN", "pypi", "token")]
    (service,) = test.services
    assert (service.name, service.image, service.command) == (
        "postgres", "postgres:16", ("postgres", "-c", "fsync=off"))
    assert (test.timeout_seconds, test.retries, test.share_workspace) == (600, 2, True)
    assert test.needs == ("build",)
    assert spec.env == {"CI": "true", "PORT": "5432"}
    assert spec.when is not None and spec.when.events == (EventKind.PUSH,
                                                          EventKind.PULL_REQUEST)
    assert spec.when.branch.include == ("main", "release/*")
    assert spec.when.branch.exclude == ("release/old",)
    assert (spec.concurrency.limit, spec.concurrency.cancel_in_progress) == (3, True)
    deploy = spec.job("deploy")
    assert deploy.secrets[0].key == "config.yaml"
    assert deploy.when is not None and deploy.when.paths.exclude == ("docs/**",)
    (notify,) = spec.finally_jobs
    assert notify.is_finally and notify.allow_failure


def test_positions_point_at_the_keys_of_the_model() -> None:
    spec = spec_of("jobs:\n  test:\n    image: python:3.12\n    steps: [make]\n")
    job = spec.job("test")
    assert (job.position.line, job.position_of("image").line) == (2, 3)


def test_every_problem_is_reported_at_once() -> None:
    text = "jobs:\n  a:\n    retries: -1\n    steps: []\n  B:\n    stepz: [x]\n"
    assert problems_of(text) == [
        "3:14: error: `jobs.a.retries` is -1; it must be between 0 and 10",
        "4:12: error: `jobs.a.steps` is empty",
        "5:3: error: job name `B` cannot become a Kubernetes name: use lowercase letters, "
        "digits and `-`, starting and ending with a letter or digit",
        "5:3: error: job `B` has no `steps`",
        "6:5: error: unknown key `stepz` in `jobs.B`",
    ]


def test_a_long_chain_of_needs_is_not_a_recursion_problem() -> None:
    jobs = "".join(f"  j{i}:\n    needs: j{i + 1}\n    steps: [x]\n" for i in range(99))
    spec = spec_of(f"jobs:\n{jobs}  j99:\n    steps: [x]\n")
    assert len(spec.jobs) == 100


def test_too_many_jobs_is_an_error() -> None:
    jobs = "".join(f"  j{i}:\n    steps: [x]\n" for i in range(101))
    assert "1:1: error: the spec has 101 jobs, over the limit of 100" in problems_of(
        f"jobs:\n{jobs}")


def test_matrix_include_that_repeats_a_combination_is_counted_once() -> None:
    values = ", ".join(str(i) for i in range(64))
    text = f"jobs:\n  t:\n    matrix:\n      n: [{values}]\n      include: [{{n: '0'}}]\n" \
           "    steps: [x]\n"
    assert problems_of(text) == []


def test_placeholders_outside_matrix_jobs_are_errors() -> None:
    assert problems_of("env:\n  A: ${{ matrix.x }}\nsteps: [x]\n") == [
        "2:6: error: `${{ }}` can only be used in a matrix job's `image` and `env`"]


def test_cancel_in_progress_at_the_top_level() -> None:
    spec = spec_of("cancel_in_progress: true\nsteps: [x]\n")
    assert spec.concurrency.cancel_in_progress and spec.concurrency.limit is None


def test_mixing_the_shorthand_image_with_jobs_is_explained() -> None:
    assert problems_of("image: python:3.12\njobs:\n  a:\n    steps: [x]\n") == [
        "1:1: error: a top-level `image` only goes with the top-level `steps` shorthand"]
