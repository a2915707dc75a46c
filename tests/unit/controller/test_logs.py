"""A failing step's log tail: the right container, the run's secrets masked, never fatal;
from the archive when the pod is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ci.archive.directory import DirectoryStore
from ci.archive.layout import StepKey
from ci.archive.steps import StepDetails, archive_step
from ci.controller.logs import LogTails
from ci.controller.runs import RunSnapshot, TaskRunSnapshot, observe
from ci.masking import Masker
from tests.unit.controller.builders import pipeline_run, task_run


def test_tail_of_the_failing_step_with_secrets_masked() -> None:
    run = RunSnapshot.of(pipeline_run(condition=("False", "Failed"),
                                      secret=("deploy-keys", "password")))
    failing = TaskRunSnapshot.of(task_run(task="build", condition=("False", "StepFailed"),
                                          exit_codes=(0, 1)))
    state = observe(run, [failing])
    asked: list[tuple[str, str, str, int]] = []

    def read_log(namespace: str, pod: str, container: str, lines: int) -> str:
        asked.append((namespace, pod, container, lines))
        return "login with hunter22 failed\ntoken ghp_forgetoken rejected\n"

    def read_secret(namespace: str, name: str) -> dict[str, str]:
        return {"password": "hunter22\n"} if name == "deploy-keys" else {}

    tails = LogTails(read_log=read_log, read_secret=read_secret, lines=40)
    found = asyncio.run(tails.for_jobs(run, state.jobs, also_mask=("ghp_forgetoken",)))
    assert asked == [("team", "widget-abc-build-pod", "step-s1", 40)]
    assert found == {"build": "login with *** failed\ntoken *** rejected\n"}


def test_an_unreadable_log_says_so() -> None:
    run = RunSnapshot.of(pipeline_run(condition=("False", "Failed")))
    failing = TaskRunSnapshot.of(task_run(task="build", condition=("False", "StepFailed"),
                                          exit_codes=(2,)))

    def read_log(namespace: str, pod: str, container: str, lines: int) -> str:
        raise ConnectionError("kubelet unreachable")

    tails = LogTails(read_log=read_log, read_secret=lambda namespace, name: None, lines=5)
    found = asyncio.run(tails.for_jobs(run, observe(run, [failing]).jobs))
    assert found == {"build": "(log unavailable: ConnectionError)"}


def test_a_pruned_pods_tail_comes_from_the_archive_masked(tmp_path: Path) -> None:
    run = RunSnapshot.of(pipeline_run(condition=("False", "Failed"),
                                      secret=("deploy-keys", "password")))
    failing = TaskRunSnapshot.of(task_run(task="build", condition=("False", "StepFailed"),
                                          exit_codes=(0, 1)))
    archive = DirectoryStore(tmp_path)
    key = StepKey(namespace="team", repository="widget", run="widget-abc", job="build",
                  step="s1")
    lines = [f"line {number}\n".encode() for number in range(100)]
    archive_step(archive, key=key, chunks=[*lines, b"login with hunter22 failed\n"],
                 masker=Masker(), details=StepDetails())

    def read_log(namespace: str, pod: str, container: str, lines: int) -> str:
        raise LookupError("404: pod not found")

    def read_secret(namespace: str, name: str) -> dict[str, str]:
        return {"password": "hunter22"}

    tails = LogTails(read_log=read_log, read_secret=read_secret, lines=3, archive=archive)
    found = asyncio.run(tails.for_jobs(run, observe(run, [failing]).jobs, repository="widget"))
    assert found == {"build": "line 98\nline 99\nlogin with *** failed"}
    # Without the Repository's name (or an archive) it says the log is unavailable.
    found = asyncio.run(tails.for_jobs(run, observe(run, [failing]).jobs))
    assert found == {"build": "(log unavailable: LookupError)"}
