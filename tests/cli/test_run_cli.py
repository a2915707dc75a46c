"""`ferry run` through the real CLI, in a subprocess, on a git repository made for each test.

No assertion depends on how fast the machine is: overlap and order are read from files the
steps write, and waits are bounded only so that a broken runner fails instead of hanging.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.pids import dies

ROOT = Path(__file__).resolve().parents[2]
# Only bounds for a broken runner; a passing test never waits this long.
COMMAND_LIMIT_SECONDS = 120
WAIT_LIMIT_SECONDS = 60


def _git(repository: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        cwd=repository,
        check=True,
        capture_output=True,
    )


def _repository(path: Path, spec: str, files: Mapping[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "--quiet", "--initial-branch=main")
    (path / ".ci.yaml").write_text(textwrap.dedent(spec))
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    _git(path, "add", ".")
    _git(path, "commit", "--quiet", "-m", "first")
    return path


def _temporary_directory(repository: Path) -> Path:
    """Where the run under test makes its workspaces: one per test, to check it is emptied."""
    path = repository.parent / "tmp"
    path.mkdir(exist_ok=True)
    return path


def _environment(
    repository: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("FERRY")
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])]
    )
    environment["TMPDIR"] = str(_temporary_directory(repository))
    environment.update(extra or {})
    return environment


def ferry_run(
    repository: Path, *args: str, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ci.cli", "run", *args],
        cwd=repository,
        env=_environment(repository, environment),
        capture_output=True,
        text=True,
        timeout=COMMAND_LIMIT_SECONDS,
        check=False,
    )
    assert not list(_temporary_directory(repository).iterdir()), "workspaces left behind"
    return result


def _wait_for(paths: list[Path]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not all(path.exists() and path.read_text().strip() for path in paths):
        assert time.monotonic() < deadline, f"never written: {paths}"
        time.sleep(0.05)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A directory outside the repository, for files steps write for the test to read."""
    path = tmp_path / "scratch"
    path.mkdir()
    return path


def test_a_passing_pipeline_exits_zero_with_output_prefixed_and_a_summary(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          build:
            steps:
              - name: hello
                run: echo "hello from $FERRY_JOB"; cat greeting.txt
        """,
        {"greeting.txt": "committed text\n"},
    )
    result = ferry_run(repository)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "build/hello | hello from build" in result.stdout
    assert "build/hello | committed text" in result.stdout
    assert "PASSED" in result.stdout
    assert "JOB" in result.stdout and "RESULT" in result.stdout


def test_a_failing_step_fails_the_job_and_the_run_and_skips_later_steps(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          test:
            steps:
              - name: first
                run: echo about to fail; false; echo not reached
              - name: second
                run: echo second step ran
        """,
    )
    result = ferry_run(repository)
    assert result.returncode == 1
    assert "test/first | about to fail" in result.stdout
    assert "not reached" not in result.stdout
    assert "second step ran" not in result.stdout
    assert "step `first` exited with code 1" in result.stdout
    assert "FAILED" in result.stdout


def test_pipefail_is_on(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        steps:
          - run: false | cat
        """,
    )
    assert ferry_run(repository).returncode == 1


def test_a_timeout_stops_the_step_and_everything_it_started(
    tmp_path: Path, scratch: Path
) -> None:
    pid_file = scratch / "sleep.pid"
    repository = _repository(
        tmp_path / "repo",
        f"""
        jobs:
          slow:
            timeout: 1s
            steps:
              - run: |
                  sleep 300 &
                  echo $! > {pid_file}
                  wait
        """,
    )
    result = ferry_run(repository)
    assert result.returncode == 1
    assert "timed out" in result.stdout
    assert dies(int(pid_file.read_text()))


def test_a_retry_that_succeeds_passes_the_job(tmp_path: Path, scratch: Path) -> None:
    counter = scratch / "attempts"
    repository = _repository(
        tmp_path / "repo",
        f"""
        jobs:
          flaky:
            retries: 2
            env:
              COUNTER: {counter}
            steps:
              - run: |
                  attempts=$(( $(cat "$COUNTER" 2>/dev/null || echo 0) + 1 ))
                  echo "$attempts" > "$COUNTER"
                  echo "attempt $attempts"
                  test "$attempts" -ge 2
        """,
    )
    result = ferry_run(repository)
    assert result.returncode == 0, result.stdout
    assert counter.read_text().strip() == "2"
    assert "flaky: running (attempt 2)" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("flaky "))
    assert row.split()[1:3] == ["passed", "2"]


def test_allow_failure_keeps_the_run_green_and_dependents_running(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          optional:
            allow_failure: true
            steps:
              - run: exit 4
          after:
            needs: optional
            steps:
              - run: echo after ran
        """,
    )
    result = ferry_run(repository)
    assert result.returncode == 0, result.stdout
    assert "failed (allowed)" in result.stdout
    assert "after/run-1 | after ran" in result.stdout


def test_finally_runs_after_a_failure_and_dependents_are_skipped(
    tmp_path: Path, scratch: Path
) -> None:
    marker = scratch / "finally-ran"
    repository = _repository(
        tmp_path / "repo",
        f"""
        jobs:
          test:
            steps:
              - run: exit 1
          deploy:
            needs: test
            steps:
              - run: echo deploying
        finally:
          notify:
            steps:
              - run: echo "$FERRY_JOB" > {marker}
        """,
    )
    result = ferry_run(repository)
    assert result.returncode == 1
    assert marker.read_text().strip() == "notify"
    assert "deploying" not in result.stdout
    assert "it needs `test`, which failed" in result.stdout
    lines = result.stdout.splitlines()
    assert lines.index("==> notify: running") > next(
        index for index, line in enumerate(lines) if line.startswith("==> test: failed")
    )


def test_job_option_runs_the_job_and_what_it_needs_only(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          lint:
            steps: [{run: echo lint ran}]
          test:
            needs: lint
            steps: [{run: echo test ran}]
          docs:
            steps: [{run: echo docs ran}]
        finally:
          notify:
            steps: [{run: echo notify ran}]
        """,
    )
    result = ferry_run(repository, "--job", "test")
    assert result.returncode == 0, result.stdout
    assert "lint ran" in result.stdout and "test ran" in result.stdout
    assert "docs ran" not in result.stdout and "notify ran" not in result.stdout

    unknown = ferry_run(repository, "--job", "nope")
    assert unknown.returncode == 2
    assert "no job `nope`" in unknown.stderr


def test_independent_jobs_run_at_the_same_time(tmp_path: Path, scratch: Path) -> None:
    # Each job waits for the other to have started: run one after the other, the first
    # would wait for the whole limit and fail.
    step = """
              - run: |
                  touch "$DIR/$FERRY_JOB"
                  for _ in $(seq 600); do [ -e "$DIR/$OTHER" ] && exit 0; sleep 0.1; done
                  exit 1
    """
    repository = _repository(
        tmp_path / "repo",
        f"""
        env:
          DIR: {scratch}
        jobs:
          left:
            env: {{OTHER: right}}
            steps:{step}
          right:
            env: {{OTHER: left}}
            steps:{step}
        """,
    )
    result = ferry_run(repository, "--jobs", "2")
    assert result.returncode == 0, result.stdout


def test_jobs_one_runs_one_job_at_a_time(tmp_path: Path, scratch: Path) -> None:
    step = """
              - run: |
                  date +%s%N > "$DIR/$FERRY_JOB.start"
                  sleep 0.2
                  date +%s%N > "$DIR/$FERRY_JOB.end"
    """
    repository = _repository(
        tmp_path / "repo",
        f"""
        env:
          DIR: {scratch}
        jobs:
          first:
            steps:{step}
          second:
            steps:{step}
        """,
    )
    result = ferry_run(repository, "--jobs", "1")
    assert result.returncode == 0, result.stdout

    def moment(name: str) -> int:
        return int((scratch / name).read_text())

    intervals = sorted(
        (moment(f"{job}.start"), moment(f"{job}.end")) for job in ("first", "second")
    )
    assert intervals[0][1] <= intervals[1][0]


def test_environment_precedence_and_ferry_variables(tmp_path: Path, scratch: Path) -> None:
    dump = scratch / "env"
    repository = _repository(
        tmp_path / "repo",
        f"""
        env:
          LEVEL: pipeline
          PIPELINE_ONLY: p
          SHADOWED: plain
        jobs:
          show:
            env:
              LEVEL: job
              JOB_ONLY: j
            secrets:
              SHADOWED: vault/shadowed
            steps:
              - env:
                  LEVEL: step
                run: env > {dump}
        """,
    )
    result = ferry_run(
        repository,
        "--secret",
        "vault/shadowed=from-the-secret",
        environment={"DEVELOPER_SHELL_ONLY": "leak"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    environment = dict(
        line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line
    )
    assert environment["LEVEL"] == "step"
    assert environment["PIPELINE_ONLY"] == "p"
    assert environment["JOB_ONLY"] == "j"
    assert environment["SHADOWED"] == "from-the-secret"
    assert "DEVELOPER_SHELL_ONLY" not in environment
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert environment["FERRY_SHA"] == sha
    assert environment["FERRY_BRANCH"] == "main"
    assert environment["FERRY_REF"] == "refs/heads/main"
    assert environment["FERRY_EVENT"] == "push"
    assert environment["FERRY_JOB"] == "show"
    assert environment["CI"] == "true"
    assert environment["PATH"]


def test_branch_and_event_options_reach_when_and_the_environment(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          release:
            when:
              branch: release/*
            steps:
              - run: echo "releasing $FERRY_BRANCH"
        """,
    )
    nothing = ferry_run(repository)
    assert nothing.returncode == 0
    assert "nothing to run" in nothing.stdout
    assert "does not match" in nothing.stdout

    result = ferry_run(repository, "--branch", "release/1.0")
    assert result.returncode == 0, result.stdout
    assert "releasing release/1.0" in result.stdout


def test_secrets_are_masked_in_all_output(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          publish:
            secrets:
              TOKEN: registry/token
              OTHER_TOKEN: registry/other
            steps:
              - run: |
                  echo "token is $TOKEN"
                  echo "other is $OTHER_TOKEN" >&2
                  exit 1
        """,
    )
    result = ferry_run(
        repository,
        "--secret",
        "TOKEN=hunter2-secret-value",
        environment={"OTHER_TOKEN": "from-the-environment"},
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "hunter2-secret-value" not in output
    assert "from-the-environment" not in output
    assert "publish/run-1 | token is ***" in output
    assert "publish/run-1 | other is ***" in output


def test_a_missing_secret_warns_and_runs_without_it(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          publish:
            secrets:
              DEPLOY_KEY: deploy/key
            steps:
              - run: echo "key set? ${DEPLOY_KEY:+yes}"
        """,
    )
    result = ferry_run(repository)
    assert result.returncode == 0, result.stdout
    assert "warning: secret DEPLOY_KEY (deploy/key)" in result.stdout
    assert "key set? \n" in result.stdout + "\n"


def test_ctrl_c_stops_every_step_and_prints_the_summary(tmp_path: Path, scratch: Path) -> None:
    step = f"""
              - run: |
                  sleep 300 &
                  echo $! > {scratch}/$FERRY_JOB.pid
                  wait
    """
    repository = _repository(
        tmp_path / "repo",
        f"""
        jobs:
          one:
            steps:{step}
          two:
            steps:{step}
        """,
    )
    with subprocess.Popen(
        [sys.executable, "-m", "ci.cli", "run", "--jobs", "2"],
        cwd=repository,
        env=_environment(repository),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            pid_files = [scratch / "one.pid", scratch / "two.pid"]
            _wait_for(pid_files)
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=COMMAND_LIMIT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 130, stdout + stderr
    assert "CANCELLED" in stdout
    assert "JOB" in stdout
    for pid_file in pid_files:
        assert dies(int(pid_file.read_text()))
    assert not list(_temporary_directory(repository).iterdir())


def test_lint_errors_are_printed_like_ferry_lint(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          test:
            stepz: []
        """,
    )
    result = ferry_run(repository)
    assert result.returncode == 1
    assert ".ci.yaml:4:5: error:" in result.stderr
    assert "nothing was run" in result.stderr


def test_a_missing_engine_is_a_clear_error(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo", "steps: [{run: 'true'}]\n")
    # A PATH holding only what Ferry itself needs, so podman is missing wherever this runs.
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("git", "bash", "sh"):
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed by ferry run"
        (tools / tool).symlink_to(found)
    result = ferry_run(repository, "--engine", "podman", environment={"PATH": str(tools)})
    assert result.returncode == 2
    assert "`podman` is not installed" in result.stderr


def test_dirty_runs_uncommitted_changes_and_the_default_does_not(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        steps:
          - run: cat message.txt
        """,
        {"message.txt": "committed\n"},
    )
    (repository / "message.txt").write_text("uncommitted\n")
    clean = ferry_run(repository)
    dirty = ferry_run(repository, "--dirty")
    assert "build/run-1 | committed" in clean.stdout
    assert "build/run-1 | uncommitted" in dirty.stdout


def test_a_spec_in_a_subdirectory_runs_in_that_directory(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo", "steps: [{run: 'true'}]\n")
    app = repository / "apps" / "web"
    app.mkdir(parents=True)
    (app / ".ci.yaml").write_text("steps: [{run: ls}]\n")
    (app / "index.html").write_text("<p>hi</p>\n")
    _git(repository, "add", ".")
    _git(repository, "commit", "--quiet", "-m", "app")
    result = ferry_run(app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "build/run-1 | index.html" in result.stdout


def test_a_tag_event_takes_the_tag_on_the_commit(tmp_path: Path) -> None:
    repository = _repository(
        tmp_path / "repo",
        """
        jobs:
          release:
            when:
              tag: v*
            steps:
              - run: echo "releasing $FERRY_TAG from $FERRY_REF"
        """,
    )
    _git(repository, "tag", "v1.2.0")
    result = ferry_run(repository, "--event", "tag")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "releasing v1.2.0 from refs/tags/v1.2.0" in result.stdout
