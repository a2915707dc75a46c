"""Every spec that `prepare` accepts compiles for Tekton and runs with the local backend.

Hypothesis writes small specs from a grammar that includes the texts that used to lint clean
and fail later (Tekton variables, `${{ }}` outside a matrix, `include` entries without a key
a placeholder uses, `retries` with `allow_failure`). The ones `prepare` refuses must not get
further; the ones it accepts must compile to a run Tekton accepts and run on this machine,
with real shell processes, ending as their scripts say. The examples are few and small:
each one runs real processes in a real git checkout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci.local.outcomes import JobChange, JobState
from ci.local.running import RunOptions, run_plan
from ci.local.workspaces import WorkspaceOrigin
from pipelines.events import Event, EventKind
from pipelines.planning import NothingToRun
from pipelines.preparing import Prepared, prepare
from pipelines.tekton import compile_pipeline_run
from pipelines.tekton_rules import violations

# (text, fails): what a step runs, and whether it makes its job fail.
PLAIN_STEPS = st.sampled_from([
    ("true", False),
    ("exit 1", True),
    ("echo B=$FERRY_BRANCH", False),
    ("echo D=$(echo ok)", False),  # plain shell: accepted
    ("echo $(params.branch)", False),  # refused: Tekton would substitute it
])
MATRIX_STEPS = st.sampled_from([
    ("echo M=${{ matrix.python }}", False),  # refused outside a matrix job, and where a
    ("echo O=${{ matrix.os }}", False),  # combination has no value for the key
    ("echo E=$MATRIX_PYTHON", False),
])
MATRICES = st.sampled_from([
    None,
    {"python": ["3.11", "3.12"]},
    {"python": ["3.11"], "include": [{"os": "linux"}]},  # a combination without `python`
    {"python": ["3.11"], "os": ["linux"], "include": [{"python": "3.13", "os": "mac"}]},
])
# retries, allow_failure: Tekton refuses both together
FAILURE_HANDLING = st.sampled_from([(0, False), (1, False), (0, True), (1, True)])


@st.composite
def specs(draw: Any) -> tuple[dict[str, Any], dict[str, bool]]:
    """A spec, and for each job whether one of its steps fails."""
    jobs: dict[str, Any] = {}
    fails: dict[str, bool] = {}
    for index in range(draw(st.integers(min_value=1, max_value=3))):
        name = f"job{index}"
        matrix = draw(MATRICES)
        steps = draw(st.lists(st.one_of(PLAIN_STEPS, MATRIX_STEPS), min_size=1, max_size=2))
        job: dict[str, Any] = {"steps": [{"run": text} for text, _ in steps]}
        fails[name] = any(failing for _, failing in steps)
        if matrix is not None:
            job["matrix"] = matrix
        if index and draw(st.booleans()):
            job["needs"] = [f"job{draw(st.integers(0, index - 1))}"]
        retries, allow_failure = draw(FAILURE_HANDLING)
        if retries:
            job["retries"] = retries
        if allow_failure:
            job["allow_failure"] = True
        jobs[name] = job
    spec: dict[str, Any] = {"jobs": jobs}
    if draw(st.booleans()):
        spec["finally"] = {"report": {"steps": [{"run": "echo B=$FERRY_BRANCH"}]}}
        fails["report"] = False
    return spec, fails


@pytest.fixture(scope="module")
def git_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository with one commit, for every example's workspaces."""
    path = tmp_path_factory.mktemp("repository")
    git = ["git", "-C", str(path), "-c", "user.name=Dev", "-c", "user.email=dev@example.com"]
    subprocess.run([*git, "init", "--quiet", "--initial-branch=main"], check=True)
    (path / "README").write_text("hello\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "first"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()
    return path, sha


class _Recorder:
    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self.changes: list[JobChange] = []

    def job_changed(self, change: JobChange) -> None:
        self.changes.append(change)

    def step_output(self, *, job: str, step: str, line: str) -> None:
        self.lines.setdefault(job, []).append(line)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(drawn=specs())
def test_every_spec_prepare_accepts_compiles_and_runs_as_its_scripts_say(
    drawn: tuple[dict[str, Any], dict[str, bool]], git_repository: tuple[Path, str],
    tmp_path: Path,
) -> None:
    spec, fails = drawn
    source = yaml.safe_dump(spec, sort_keys=False)
    path, sha = git_repository
    event = Event(kind=EventKind.PUSH, repository="o/r", repository_url=str(path), sha=sha,
                  ref="refs/heads/main", branch="main")
    prepared = prepare(source, path=".ci.yaml", event=event)
    if not isinstance(prepared, Prepared):
        assert prepared.errors, source  # refused: with at least one error to show
        return
    planned = prepared.outcome
    assert not isinstance(planned, NothingToRun), source  # no `when` in this grammar
    assert violations(compile_pipeline_run(planned, event)) == (), source

    recorder = _Recorder()
    options = RunOptions(parallel=2, temporary_directory=tmp_path, grace_seconds=1)
    result = run_plan(planned, event, origin=WorkspaceOrigin(repository=path, sha=sha),
                      options=options, observer=recorder)

    assert [job.name for job in result.jobs] == [job.name for job in planned.all_jobs], source
    by_name = {job.name: job for job in result.jobs}
    for job in planned.all_jobs:
        ended = by_name[job.name]
        assert ended.state is not JobState.CANCELLED, source
        if ended.state is JobState.SKIPPED:
            continue
        assert ended.state is (JobState.FAILURE if fails[job.spec_job] else JobState.SUCCESS), \
            (source, job.name, ended)
        if ended.state is JobState.FAILURE:
            assert ended.attempts == job.retries + 1, source
        lines = recorder.lines.get(job.name, [])
        assert not any("${{" in line or "$(" in line for line in lines), (source, lines)
        for line in lines:
            key, _, value = line.partition("=")
            expected = {"B": "main", "D": "ok", "M": job.matrix.get("python", ""),
                        "E": job.matrix.get("python", ""), "O": job.matrix.get("os", "")}
            assert value == expected[key], (source, job.name, line)
    for job in planned.jobs:
        needs_ended_badly = any(
            by_name[need].state is JobState.SKIPPED
            or (by_name[need].state is not JobState.SUCCESS and not by_name[need].allow_failure)
            for need in job.needs
        )
        if needs_ended_badly:
            assert by_name[job.name].state is JobState.SKIPPED, (source, job.name)
