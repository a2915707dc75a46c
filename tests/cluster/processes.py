"""Starting, watching and stopping the cluster's processes.

Every component runs in a process group of its own, writes stdout and stderr to one log file,
and is killed with the test process if that dies first (Linux parent-death signal), so that
an interrupted run leaves no stray etcd behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

# How long a component gets to exit after SIGTERM before it is killed. etcd and the API server
# exit in well under a second; the bound only matters when something hangs.
STOP_GRACE_SECONDS = 10.0

_PR_SET_PDEATHSIG = 1

_handed_out: set[int] = set()


class ComponentExitedError(RuntimeError):
    """A component stopped while we were waiting for it to become ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The port is released before the component binds it, so another process could take it in
    between; on a test machine that race is rare enough, and a lost race shows up as the
    component exiting at once with "address already in use" in its log.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        # Never hand out the same port twice in one session (etcd's two ports are asked for
        # before either is bound).
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. SIGKILL on parent death covers the case where
    # pytest itself is killed (CI timeout, Ctrl-C twice) and no teardown runs.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: teardown still stops the process
        pass


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that it does not exist."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - 64 * 1024))
            text = log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Component:
    """One running process of the cluster, logging to ``log_path``."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"$ {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            list(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(self.env) if self.env is not None else None,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 -- started from the main thread only
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_running(self) -> None:
        """Raise ``ComponentExitedError`` with the log's tail if the process has stopped."""
        if self.process is not None and self.process.poll() is not None:
            raise ComponentExitedError(
                f"{self.name} exited with code {self.process.returncode}; "
                f"last lines of {self.log_path}:\n{tail(self.log_path)}"
            )

    def stop(self) -> None:
        """Terminate the whole process group; kill it if it does not exit in time."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    _signal_group(process.pid, signal.SIGKILL)
                    process.wait(timeout=STOP_GRACE_SECONDS)
            # Children of the component (there should be none) go with the group.
            _signal_group(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def wait_until(
    predicate: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    watching: Sequence[Component] = (),
    interval: float = 0.2,
) -> None:
    """Poll ``predicate`` until it is true, failing fast if a watched component exits.

    Raises ``TimeoutError`` naming ``what`` and showing the watched components' log tails.
    """
    deadline = time.monotonic() + timeout
    while True:
        for component in watching:
            component.check_running()
        if predicate():
            return
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"--- last lines of {c.log_path} ---\n{tail(c.log_path)}" for c in watching
            )
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(interval)


def built_path(script: Path, variable: str) -> Path:
    """``$variable`` (set by tests/run), else the path a build script prints on its last line,
    building what its cache lacks. Never skips: a failed build fails the test with its log."""
    configured = os.environ.get(variable)
    if configured:
        return Path(configured)
    repo = script.resolve().parents[2]
    built = subprocess.run([str(script)], capture_output=True, text=True, check=False, cwd=repo)
    if built.returncode != 0:
        pytest.fail(f"{script.relative_to(repo)} failed (exit {built.returncode}):\n"
                    f"{built.stderr[-4000:]}", pytrace=False)
    return Path(built.stdout.strip().splitlines()[-1])
