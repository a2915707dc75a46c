"""A failing step's log tail: the right container, the run's secrets masked, never fatal."""

from __future__ import annotations

import asyncio

from ci.controller.logs import LogTails
from ci.controller.runs import RunSnapshot, TaskRunSnapshot, observe
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
