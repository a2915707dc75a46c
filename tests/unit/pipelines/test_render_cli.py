from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ci.cli import main

SPEC = """\
jobs:
  test:
    image: python:3.12
    steps:
      - run: pytest
  docs:
    image: python:3.12
    when:
      paths: ["docs/**"]
    steps:
      - run: mkdocs build
"""


def render(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str
           ) -> tuple[int, str, str]:
    spec = tmp_path / ".ci.yaml"
    spec.write_text(text)
    code = main(["render", str(spec), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "task_names", "stderr"),
    [
        (["--sha", "a" * 40], ["test", "docs"], ""),
        ([], ["test", "docs"], "using 0000000000000000000000000000000000000000"),
        (["--sha", "a" * 40, "--changed-file", "src/a.py"], ["test"],
         "skipped docs: none of the 1 changed files match `paths`"),
        (["--sha", "a" * 40, "--changed-file", "docs/x.md", "--changed-file", "src/a.py"],
         ["test", "docs"], ""),
    ],
)
def test_render(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                task_names: list[str], stderr: str) -> None:
    code, out, err = render(tmp_path, capsys, SPEC, *args)
    assert code == 0
    run = yaml.safe_load(out)
    assert [t["name"] for t in run["spec"]["pipelineSpec"]["tasks"]] == task_names
    assert stderr in err


@pytest.mark.parametrize(
    ("args", "params"),
    [
        (["--event", "push", "--branch", "dev"],
         {"event": "push", "branch": "dev", "ref": "refs/heads/dev", "tag": ""}),
        (["--event", "tag", "--tag", "v1.0"],
         {"event": "tag", "branch": "", "ref": "refs/tags/v1.0", "tag": "v1.0"}),
        (["--event", "pull_request", "--pr", "7", "--pr-title", "Fix `x`", "--pr-branch", "f"],
         {"event": "pull_request", "branch": "main", "ref": "refs/pull/7/head",
          "pull-request-number": "7", "pull-request-title": "Fix `x`",
          "pull-request-head-branch": "f"}),
        (["--repository", "team/app", "--repository-url", "https://git.example/app.git",
          "--sha", "b" * 40],
         {"repository": "team/app", "repository-url": "https://git.example/app.git",
          "sha": "b" * 40}),
    ],
)
def test_event_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                         params: dict[str, str]) -> None:
    code, out, _ = render(tmp_path, capsys, SPEC, *args)
    assert code == 0
    given = {p["name"]: p["value"] for p in yaml.safe_load(out)["spec"]["params"]}
    assert {key: given[key] for key in params} == params


def test_namespace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = render(tmp_path, capsys, SPEC, "--namespace", "team-a")
    assert yaml.safe_load(out)["metadata"]["namespace"] == "team-a"


@pytest.mark.parametrize(
    ("args", "account", "labelled"),
    [([], "default", False), (["--service-account", "ci"], "ci", False),
     (["--service-account", "ci", "--untrusted"], "default", True)],
)
def test_service_account_and_untrusted(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       args: list[str], account: str, labelled: bool) -> None:
    _, out, _ = render(tmp_path, capsys, SPEC, *args)
    run = yaml.safe_load(out)
    assert run["spec"]["taskRunTemplate"]["serviceAccountName"] == account
    assert ("ferry.dev/untrusted" in run["metadata"]["labels"]) is labelled


def test_nothing_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "when:\n  event: tag\nsteps:\n  - run: echo hi\n"
    code, out, err = render(tmp_path, capsys, text, "--event", "push")
    assert (code, out) == (0, "")
    assert "nothing runs: the pipeline's `when` does not hold: event `push`" in err


def test_lint_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = render(tmp_path, capsys, "jobs:\n  a:\n    stepz: []\n")
    assert (code, out) == (1, "")
    assert ".ci.yaml:3:5: error:" in err


def test_compile_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = 'steps:\n  - run: echo "$(params.branch)"\n'
    code, out, err = render(tmp_path, capsys, text)
    assert (code, out) == (1, "")
    assert "would be replaced by Tekton" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_same_input_same_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render(tmp_path, capsys, SPEC)[1] == render(tmp_path, capsys, SPEC)[1]
