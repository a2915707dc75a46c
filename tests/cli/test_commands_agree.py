"""`ferry lint`, `ferry render` and `ferry run` say the same about a spec, through the real CLI.

Each problem here once passed `ferry lint` (or was a warning) and then failed, or ran anyway,
in another command: `retries` with `allow_failure`, a Tekton variable in `run`, `${{ }}` in
a job without a matrix, an `include` entry that adds a combination without the key a
placeholder uses, a dotted matrix key, and an event nothing starts. All three commands call
`pipelines.preparing.prepare`, so all three print every problem, with `file:line:col`, and
exit 1 without running anything.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.test_run_cli import _environment, _repository

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
jobs:
  flaky:
    retries: 2
    allow_failure: true
    steps: [make]
  shell:
    steps:
      - run: echo $(params.branch) > ran
      - run: echo ${{ matrix.python }} > ran
    when:
      event: [push, comment]
  test:
    matrix:
      python: ["3.12"]
      include:
        - os: linux
    steps:
      - run: echo ${{ matrix.python }} > ran
      - run: echo ${{ matrix.python.version }} > ran
"""

# What each command prints about SPEC, errors first, in file order.
ERRORS = [
    ".ci.yaml:3:14: error: job `flaky` sets both `retries` and `allow_failure`",
    ".ci.yaml:8:14: error: `$(params.branch)` would be replaced by Tekton",
    ".ci.yaml:9:14: error: `${{ }}` in `run` is replaced only in a matrix job",
    ".ci.yaml:11:21: error: nothing starts a run with event `comment`",
    ".ci.yaml:18:14: error: `${{ matrix.python }}`: some combinations of the matrix have no "
    "`python`",
    ".ci.yaml:19:14: error: `${{ matrix.python.version }}` is not supported",
]


def ferry(repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci.cli", *args],
        cwd=repository,
        env=_environment(repository),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def problems(output: str) -> list[str]:
    """The `FILE:LINE:COL: severity: message` lines of `output`."""
    return [line for line in output.splitlines() if line.startswith(".ci.yaml:")
            and line.split(":")[1].isdigit()]


def test_lint_render_and_run_print_the_same_problems_and_exit_1(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo", textwrap.dedent(SPEC))
    lint = ferry(repository, "lint")
    render = ferry(repository, "render", "--sha", "a" * 40)
    run = ferry(repository, "run")

    said = problems(lint.stdout)
    errors = [line for line in said if ": error: " in line]
    assert len(errors) == len(ERRORS)
    for line, expected in zip(errors, ERRORS, strict=True):
        assert line.startswith(expected), line
    assert lint.returncode == 1
    assert lint.stdout.splitlines()[-1] == "1 file checked: 6 errors, 2 warnings"

    assert render.returncode == 1 and render.stdout == ""
    assert problems(render.stderr) == said
    assert run.returncode == 1
    assert problems(run.stderr) == said
    assert ".ci.yaml: 6 errors; nothing was run" in run.stderr
    assert not (repository / "ran").exists()


def test_a_clean_spec_lints_renders_and_runs(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo", textwrap.dedent("""\
        jobs:
          test:
            matrix:
              python: ["3.12"]
              include:
                - python: "3.13"
                  os: linux
            steps:
              - run: echo "python $MATRIX_PYTHON"
        """))
    lint = ferry(repository, "lint")
    assert lint.returncode == 0 and lint.stdout == "ok: 1 file checked: 0 errors, 0 warnings\n"
    render = ferry(repository, "render", "--sha", "a" * 40)
    assert render.returncode == 0 and "name: test-3-13-linux" in render.stdout
    run = ferry(repository, "run")
    assert run.returncode == 0, run.stderr
    assert "python 3.12" in run.stdout and "python 3.13" in run.stdout
