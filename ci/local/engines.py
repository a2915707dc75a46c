"""Where a step's script runs: on this machine, or in its image through docker or podman.

An engine turns a step into a `Launch`: the command line, its environment and directory.
It never puts a value into the command line: scripts are files and values are environment
variables (a container gets `--env NAME`, and the engine's client reads the value from its
own environment), so neither event data nor secrets appear in `ps` or need quoting.

- `HostEngine`: `bash -eo pipefail SCRIPT` in the job's workspace; a `run` starting with
  `#!` is executed as it is, as on Tekton. Images are ignored.
- `ContainerEngine`: `docker|podman run` of the step's image with the workspace mounted at
  `/workspace/source` (the path and working directory steps have on Tekton), running the
  very script the Tekton compiler would write (`pipelines.scripts.shell_script`: bash when
  the image has it, `sh -e` otherwise), with no-new-privileges. Services are not started.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from msgspec import Struct, field

from pipelines.scripts import SOURCE_PATH, shell_script

CONTAINER_SCRIPT_PATH = "/ferry/step"


class EngineName(StrEnum):
    DOCKER = "docker"
    PODMAN = "podman"


class EngineNotFoundError(Exception):
    def __init__(self, name: EngineName) -> None:
        self.name = name
        super().__init__(
            f"--engine {name}: `{name}` is not installed here (not found on PATH). "
            f"Install {name}, or run without --engine to run the steps on this machine "
            "(images are then ignored)."
        )


class Launch(Struct, frozen=True, kw_only=True):
    """One process to start for a step."""

    argv: tuple[str, ...]
    environment: Mapping[str, str]  # the process's whole environment
    directory: Path
    # Run after the process group is killed, for what lives outside it (a container keeps
    # running when its client dies).
    cleanup: tuple[str, ...] = field(default=())


class Engine(Protocol):
    @property
    def uses_images(self) -> bool: ...

    def launch(
        self,
        *,
        script: str,
        script_path: Path,
        workspace: Path,
        image: str,
        environment: Mapping[str, str],
        container_name: str,
    ) -> Launch:
        """Write `script` to `script_path` and say how to run it.

        `environment` holds the step's own variables (plan, Ferry's, secrets) without the
        host base, which only the host engine adds.
        """
        ...


class HostEngine(Struct, frozen=True):
    base: Mapping[str, str]  # the clean host environment (see `environment.base_environment`)

    @property
    def uses_images(self) -> bool:
        return False

    def launch(
        self,
        *,
        script: str,
        script_path: Path,
        workspace: Path,
        image: str,
        environment: Mapping[str, str],
        container_name: str,
    ) -> Launch:
        _write_script(script_path, script)
        argv = (
            (str(script_path),)
            if script.startswith("#!")
            else ("bash", "-eo", "pipefail", str(script_path))
        )
        return Launch(argv=argv, environment={**self.base, **environment}, directory=workspace)


class ContainerEngine(Struct, frozen=True):
    name: EngineName
    binary: str  # the client's absolute path
    base: Mapping[str, str]  # the client's own environment (PATH, HOME for its config)

    @property
    def uses_images(self) -> bool:
        return True

    def launch(
        self,
        *,
        script: str,
        script_path: Path,
        workspace: Path,
        image: str,
        environment: Mapping[str, str],
        container_name: str,
    ) -> Launch:
        _write_script(script_path, shell_script(script))
        argv = [
            self.binary,
            "run",
            "--rm",
            "--name",
            container_name,
            "--volume",
            f"{workspace}:{SOURCE_PATH}",
            "--volume",
            f"{script_path}:{CONTAINER_SCRIPT_PATH}:ro",
            "--workdir",
            SOURCE_PATH,
            "--entrypoint",
            CONTAINER_SCRIPT_PATH,
            # As `allowPrivilegeEscalation: false` on Tekton: no setuid binary raises a step.
            "--security-opt",
            "no-new-privileges",
        ]
        for name in environment:
            argv += ["--env", name]  # the value comes from the client's environment
        argv.append(image)
        return Launch(
            argv=tuple(argv),
            environment={**self.base, **environment},
            directory=workspace,
            cleanup=(self.binary, "rm", "--force", container_name),
        )


def find_engine(name: EngineName | None, *, base: Mapping[str, str]) -> Engine:
    """The engine called `name` (None: the host); raises `EngineNotFoundError` if missing."""
    if name is None:
        return HostEngine(base)
    binary = shutil.which(name, path=base.get("PATH"))
    if binary is None:
        raise EngineNotFoundError(name)
    return ContainerEngine(name, binary, base)


def _write_script(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    path.chmod(0o700 if not text.startswith("#!") else 0o755)
