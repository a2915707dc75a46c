from __future__ import annotations

from pathlib import Path

import pytest

from ci.local.engines import (
    CONTAINER_SCRIPT_PATH,
    ContainerEngine,
    EngineName,
    EngineNotFoundError,
    HostEngine,
    find_engine,
)
from pipelines.scripts import SOURCE_PATH, shell_script

BRANCH_WITH_SHELL = "main$(touch /tmp/pwned)"


def test_container_command_line_mounts_the_workspace_and_names_variables_only(
    tmp_path: Path,
) -> None:
    engine = ContainerEngine(EngineName.PODMAN, "/usr/bin/podman", {"PATH": "/usr/bin"})
    launch = engine.launch(
        script="make test",
        script_path=tmp_path / "scripts" / "test",
        workspace=tmp_path / "workspace",
        image="docker.io/library/python:3.12",
        environment={"FERRY_BRANCH": BRANCH_WITH_SHELL, "TOKEN": "s3cret"},
        container_name="ferry-local-abc-test-1-run-1",
    )
    assert launch.argv == (
        "/usr/bin/podman", "run", "--rm",
        "--name", "ferry-local-abc-test-1-run-1",
        "--volume", f"{tmp_path / 'workspace'}:{SOURCE_PATH}",
        "--volume", f"{tmp_path / 'scripts' / 'test'}:{CONTAINER_SCRIPT_PATH}:ro",
        "--workdir", SOURCE_PATH,
        "--entrypoint", CONTAINER_SCRIPT_PATH,
        "--security-opt", "no-new-privileges",
        "--env", "FERRY_BRANCH",
        "--env", "TOKEN",
        "docker.io/library/python:3.12",
    )  # fmt: skip
    # Values travel in the client's environment, never in its command line.
    assert not any(BRANCH_WITH_SHELL in part or "s3cret" in part for part in launch.argv)
    assert launch.environment["FERRY_BRANCH"] == BRANCH_WITH_SHELL
    assert launch.environment["PATH"] == "/usr/bin"
    assert launch.cleanup == ("/usr/bin/podman", "rm", "--force", "ferry-local-abc-test-1-run-1")
    # The very script Tekton runs: bash when the image has it, sh -e otherwise.
    assert (tmp_path / "scripts" / "test").read_text() == shell_script("make test")


def test_host_runs_bash_with_pipefail_on_a_script_file(tmp_path: Path) -> None:
    engine = HostEngine({"PATH": "/bin", "HOME": "/home/dev"})
    script = tmp_path / "step"
    launch = engine.launch(
        script="echo hi", script_path=script, workspace=tmp_path, image="ignored",
        environment={"A": "1"}, container_name="unused",
    )  # fmt: skip
    assert launch.argv == ("bash", "-eo", "pipefail", str(script))
    assert script.read_text() == "echo hi\n"
    assert launch.environment == {"PATH": "/bin", "HOME": "/home/dev", "A": "1"}
    assert launch.directory == tmp_path
    assert launch.cleanup == ()


def test_host_executes_a_script_with_its_own_interpreter(tmp_path: Path) -> None:
    script = tmp_path / "step"
    launch = HostEngine({}).launch(
        script="#!/usr/bin/env python3\nprint(1)\n", script_path=script, workspace=tmp_path,
        image="ignored", environment={}, container_name="unused",
    )  # fmt: skip
    assert launch.argv == (str(script),)
    assert script.stat().st_mode & 0o100


def test_a_missing_engine_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(EngineNotFoundError, match="`docker` is not installed") as caught:
        find_engine(EngineName.DOCKER, base={"PATH": str(tmp_path)})
    assert "run without --engine" in str(caught.value)


def test_an_installed_engine_is_found_on_the_path(tmp_path: Path) -> None:
    client = tmp_path / "docker"
    client.write_text("#!/bin/sh\n")
    client.chmod(0o755)
    engine = find_engine(EngineName.DOCKER, base={"PATH": str(tmp_path)})
    assert isinstance(engine, ContainerEngine)
    assert engine.binary == str(client)
    assert isinstance(find_engine(None, base={}), HostEngine)
